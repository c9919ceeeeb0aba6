"""The ops pages in a real browser: a steward reads their own department's batches with no form to decide; the
pages in English and on a phone; then ops find a quarantined batch from the pipelines page, read its quality report
(failing row numbers, masked examples), and release one batch and discard another from the quarantine page, each
with a reason (a blank one is refused and says what to fix). The decisions come last, so the other tests see the
batches quarantined. Every page is screenshotted and checked with axe-core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.api.console.conftest import looked_at
from tests.api.test_runs_api import quarantine

FAULTY = {"PSGA-RK-0001": "psga_population_20261122.csv", "SCJG-FR-0001": "scjg_enterprise_20261121.csv"}


@pytest.fixture(scope="module")
def quarantined(published: list[str], database: str, samples_dir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:  # fmt: skip
    """The faulty samples, ingested after the good ones were published: one quarantined batch per item."""
    work = tmp_path_factory.mktemp("ops-journeys")
    return {code: quarantine(database, work, code, (samples_dir / "faulty" / name).read_bytes(), name)
            for code, name in FAULTY.items()}  # fmt: skip


def batch_section(page: Page, batch: int) -> Locator:
    return page.locator("section", has=page.locator(f"#batch-{batch}"))


def test_a_steward_reads_their_departments_batches_without_forms(
    open_page: Callable[..., Page], console: str, quarantined: dict[str, int], published: list[str]
) -> None:
    steward = open_page("psga-steward")
    steward.goto(f"{console}/ops")
    expect(steward.get_by_role("row")).to_have_count(2)  # the header and the population item
    steward.goto(f"{console}/ops/quarantine")
    expect(steward.get_by_role("button", name="放行")).to_have_count(0)
    expect(steward.get_by_role("button", name="丢弃")).to_have_count(0)
    looked_at(steward, "ops-quarantine-steward-zh")


def test_the_pages_in_english_and_on_a_phone(open_page: Callable[..., Page], console: str, ops: str,
                                             quarantined: dict[str, int]) -> None:  # fmt: skip
    person = open_page(ops, locale="en-US")
    person.get_by_role("link", name="Pipelines").click()
    expect(person.get_by_role("heading", level=1)).to_have_text("Pipelines")
    looked_at(person, "ops-pipelines-en")
    person.goto(f"{console}/runs/{quarantined['PSGA-RK-0001']}")
    expect(person.get_by_role("heading", name="Failing checks")).to_be_visible()
    looked_at(person, "ops-run-report-en")
    person.goto(f"{console}/ops/quarantine")
    looked_at(person, "ops-quarantine-en")

    phone = open_page(ops, width=390, height=844)
    phone.goto(f"{console}/ops")
    looked_at(phone, "ops-pipelines-phone-zh")
    phone.goto(f"{console}/runs/{quarantined['SCJG-FR-0001']}")
    looked_at(phone, "ops-run-report-phone-zh")


def test_ops_read_a_report_then_release_one_batch_and_discard_another(
    open_page: Callable[..., Page], console: str, ops: str, quarantined: dict[str, int]
) -> None:
    population, enterprise = quarantined["PSGA-RK-0001"], quarantined["SCJG-FR-0001"]
    person = open_page(ops)
    person.get_by_role("link", name="数据管道").click()
    expect(person.get_by_role("heading", level=1)).to_have_text("数据管道")
    row = person.get_by_role("row").filter(has_text="PSGA-RK-0001")
    expect(row).to_contain_text("已隔离")
    expect(row).to_contain_text("第 1 版")
    expect(row.get_by_role("link", name="ingest_psga_rk_0001")).to_have_attribute(
        "href", "http://localhost:8080/dags/ingest_psga_rk_0001"
    )
    looked_at(person, "ops-pipelines-zh")

    person.get_by_role("link", name="隔离批次:2").click()
    expect(person.get_by_role("heading", level=1)).to_have_text("隔离批次")
    looked_at(person, "ops-quarantine-zh")
    batch_section(person, population).get_by_role("link", name=f"批次 {population} 的质量报告").click()
    expect(person.get_by_role("heading", level=1)).to_have_text(f"批次 {population} 的质量报告")
    failing = person.get_by_role("row").filter(has_text="身份证号校验位")  # the rule, said in Chinese
    expect(failing).to_contain_text("244, 518")
    expect(failing).to_contain_text("4403**********")  # a level-3 field's examples come masked
    expect(person.get_by_role("link", name="下载全部失败行(CSV)")).to_be_visible()
    looked_at(person, "ops-run-report-zh")

    person.get_by_role("link", name="隔离批次").click()
    section = batch_section(person, population)
    section.get_by_label("放行理由").fill("   ")  # a browser lets blanks through `required`: the API refuses them
    section.get_by_role("button", name="放行").click()
    what_to_fix = "请填写处理理由(1 至 1,000 个字符),理由将随决定一并记录。"
    expect(person.get_by_role("alert")).to_have_text(f"批次 {population} · {what_to_fix}")
    expect(batch_section(person, population).get_by_label("放行理由")).to_have_attribute("aria-invalid", "true")
    looked_at(person, "ops-quarantine-refused-zh")

    reason = "经核对,两条身份证号为户籍系统录入错误,其余数据可用"
    batch_section(person, population).get_by_label("放行理由").fill(reason)
    batch_section(person, population).get_by_role("button", name="放行").click()
    expect(person.get_by_role("status")).to_have_text(f"批次 {population} 已放行。")
    expect(batch_section(person, population)).to_have_count(0)

    batch_section(person, enterprise).get_by_label("丢弃理由").fill("市场监管局将重新导出")
    batch_section(person, enterprise).get_by_role("button", name="丢弃").click()
    expect(person.get_by_role("status")).to_have_text(f"批次 {enterprise} 已丢弃。")
    expect(person.get_by_text("没有待处理的隔离批次。")).to_be_visible()
    looked_at(person, "ops-quarantine-decided-zh")

    person.goto(f"{console}/runs/{population}")
    expect(person.locator("dl.facts")).to_contain_text("已放行")
    expect(person.get_by_role("button", name="放行")).to_have_count(0)
    person.goto(f"{console}/ops")
    expect(person.get_by_role("row").filter(has_text="PSGA-RK-0001")).to_contain_text("第 2 版")
