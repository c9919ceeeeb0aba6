"""The console's ops pages over HTTP: the pipelines page lists what the API's /freshness and /runs give the same
person; ops release and discard quarantined batches with a reason through the API's own functions (audited as
them); a steward reads their own department's batches without a form to decide; a refused decision changes nothing,
keeps what was typed and says what to fix; a forged form is refused; people without ``runs read`` see no link."""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, login, status_of
from tests.api.test_console import csrf_of, signed_in
from tests.api.test_review import audit_events
from tests.api.test_runs_api import POPULATION, population_export, quarantine

ENTERPRISE_FAULTY = "faulty/scjg_enterprise_20261121.csv"
AIRFLOW = "http://localhost:8080/dags/"
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
BATCH_LINK = re.compile(r'href="/console/runs/(\d+)"')
ITEM_LINK = re.compile(r'href="/console/items/([^"]+)"')
DECISION_FORM = re.compile(r'action="/console/ops/quarantine/(\d+)/(release|discard)"')


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-ops")


class Batches:
    """Quarantined batches of the population item, each of another export (another update time)."""

    def __init__(self, database: str, samples_dir: Path, work: Path) -> None:
        self.database, self.samples_dir, self.work, self.variant = database, samples_dir, work, 0

    def new(self) -> int:
        self.variant += 1
        data = population_export(self.samples_dir, self.variant)
        return quarantine(self.database, self.work, POPULATION, data, f"population-{self.variant}.csv")


@pytest.fixture(scope="module")
def batches(published: list[str], database: str, samples_dir: Path, work: Path) -> Batches:
    return Batches(database, samples_dir, work)


@pytest.fixture(scope="module")
def enterprise(published: list[str], database: str, samples_dir: Path, work: Path) -> int:
    """The enterprise item's faulty export, quarantined (another department's than the population's)."""
    data = (samples_dir / ENTERPRISE_FAULTY).read_bytes()
    return quarantine(database, work, "SCJG-FR-0001", data, "scjg_enterprise_20261121.csv")


def api_as(client: TestClient, username: str) -> dict[str, str]:
    return bearer(login(client, username))


def run_of(client: TestClient, batch: int, headers: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = status_of(client.get(f"/runs/{batch}", headers=headers), 200)
    return found


def post(client: TestClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": client.cookies["datashare_csrf"], **data}, follow_redirects=False)


def rows_of(page: str) -> dict[str, str]:
    """The pipelines table's rows by item code."""
    rows = {}
    for row in ROW.findall(page):
        codes = ITEM_LINK.findall(row)
        if codes:
            rows[codes[0]] = row
    return rows


# --- the pipelines page ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["ops", "psga-steward", "zsj-steward"])
def test_the_pipelines_page_lists_what_the_api_gives_the_same_person(
    client: TestClient, ops: str, batches: Batches, enterprise: int, username: str
) -> None:
    batches.new()  # a quarantined batch is the population item's last run
    headers = api_as(client, username)
    fresh = status_of(client.get("/freshness", headers=headers), 200)
    signed_in(client, username)
    page = client.get("/console/ops")
    assert page.status_code == 200, page.text
    rows = rows_of(page.text)
    assert set(rows) == {item["item"] for item in fresh["items"]}
    labels = {"on_time": "按时", "late": "迟到", "overdue": "严重逾期", "never_received": "从未收到"}
    for item in fresh["items"]:
        row = rows[item["item"]]
        newest = status_of(client.get("/runs", params={"item": item["item"], "limit": 1}, headers=headers), 200)
        assert BATCH_LINK.findall(row) == [str(run["batch"]) for run in newest["runs"]]
        assert f'class="fresh {item["status"]}"' in row and labels[item["status"]] in row
        schedule = html.escape(item["update_frequency"]).replace(" ", "\N{NO-BREAK SPACE}")  # kept on one line
        assert f"<code>{schedule}</code>" in row and item["source_system"] in row
        assert f'{AIRFLOW}ingest_{item["item"].lower().replace("-", "_")}"' in row
    if username == "ops":
        assert {"PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"} <= set(rows)
        assert "已隔离" in rows[POPULATION] and "第 1 版" in rows[POPULATION]  # quarantined; version 1 still current
        assert "尚无运行" in rows["ZSJ-MS-0001"]
    waiting = status_of(client.get("/quarantine", params={"limit": 500}, headers=headers), 200)["batches"]
    assert f"隔离批次:{len(waiting)}" in page.text
    client.cookies.clear()


def test_the_pipelines_page_in_english_with_filters(client: TestClient, ops: str) -> None:
    signed_in(client, "ops")
    english = {"Accept-Language": "en"}
    page = client.get("/console/ops", params={"department": "psga"}, headers=english)
    assert page.status_code == 200 and "Pipelines" in page.text and "Quarantined batches" in page.text
    assert set(rows_of(page.text)) == {POPULATION}
    late = client.get("/console/ops", params={"status": "late"}, headers=english)
    assert rows_of(late.text) == {} and "No pipeline matches." in late.text
    wrong = client.get("/console/ops", params={"status": "lost"}, headers=english)
    assert wrong.status_code == 200 and "Some filters were not valid and were left out." in wrong.text
    for number in ("²", "9" * 5000, "-1", "0"):
        assert set(rows_of(client.get("/console/ops", params={"page": number}).text)) >= {POPULATION}
    unknown = client.get("/console/ops", params={"department": "nowhere"}, headers=english)
    assert unknown.status_code == 404 and "Traceback" not in unknown.text
    client.cookies.clear()


# --- who sees and decides what ------------------------------------------------------------------------------------


def test_a_steward_sees_only_their_department_and_no_forms(
    client: TestClient, ops: str, batches: Batches, enterprise: int, database: str
) -> None:
    own = batches.new()
    signed_in(client, "psga-steward")
    pipelines = client.get("/console/ops")
    assert set(rows_of(pipelines.text)) == {POPULATION} and 'id="department"' not in pipelines.text
    another = client.get("/console/ops", params={"department": "scjg"})
    assert another.status_code == 403 and "您的角色无权进行此操作。" in another.text
    listed = client.get("/console/ops/quarantine")
    assert listed.status_code == 200
    api = status_of(client.get("/quarantine", headers=api_as(client, "psga-steward")), 200)["batches"]
    assert set(map(int, BATCH_LINK.findall(listed.text))) == {run["batch"] for run in api}
    assert own in {run["batch"] for run in api} and enterprise not in {run["batch"] for run in api}
    assert DECISION_FORM.findall(listed.text) == [] and "这些批次由运维人员处理" in listed.text
    report = client.get(f"/console/runs/{own}")
    assert report.status_code == 200 and DECISION_FORM.findall(report.text) == []
    theirs = client.get(f"/console/runs/{enterprise}")
    assert theirs.status_code == 404 and "没有这个批次,或您无权查看。" in theirs.text

    refused = post(client, f"/console/ops/quarantine/{own}/release", reason="提供部门自行放行")
    assert refused.status_code == 403 and "您的角色无权进行此操作。" in refused.text
    assert 'value="提供部门自行放行"' not in refused.text  # no form to keep it in: the steward may not decide
    assert run_of(client, own, api_as(client, "ops"))["outcome"] == "quarantined"
    assert audit_events(database, "runs.operate", principal="user:psga-steward", outcome="denied")
    client.cookies.clear()


def test_ops_see_every_department_and_the_forms(client: TestClient, ops: str, batches: Batches,
                                                enterprise: int) -> None:  # fmt: skip
    own = batches.new()
    signed_in(client, "ops")
    listed = client.get("/console/ops/quarantine")
    api = status_of(client.get("/quarantine", headers=api_as(client, "ops")), 200)["batches"]
    assert set(map(int, BATCH_LINK.findall(listed.text))) == {run["batch"] for run in api} >= {own, enterprise}
    assert {(own, "release"), (own, "discard"), (enterprise, "release")} <= {
        (int(batch), action) for batch, action in DECISION_FORM.findall(listed.text)
    }
    assert 'href="/console/ops/quarantine"' in client.get("/console/ops").text
    client.cookies.clear()


def test_ops_release_with_a_reason_audited_as_them(client: TestClient, ops: str, batches: Batches,
                                                   database: str) -> None:  # fmt: skip
    batch = batches.new()
    signed_in(client, "ops")
    released = post(client, f"/console/ops/quarantine/{batch}/release", reason="  核对后确认为校验位误报  ")
    assert released.status_code == 303
    assert released.headers["location"] == f"/console/ops/quarantine?released={batch}"
    assert f"批次 {batch} 已放行。" in client.get(released.headers["location"]).text
    for crafted in (f"discarded={batch}", "released=999999", f"released={batches.new()}"):  # announces only what is so
        assert (
            "已放行。" not in (shown := client.get(f"/console/ops/quarantine?{crafted}").text)
            and "已丢弃。" not in shown
        )
    record = run_of(client, batch, api_as(client, "ops"))
    assert (record["outcome"], record["decided_by"]) == ("released", "user:ops") and record["version"] is not None
    event = audit_events(database, "quarantine.release", outcome="done", principal="user:ops")[-1]
    assert event.detail["batch_id"] == batch and event.detail["reason"] == "核对后确认为校验位误报"
    report = client.get(f"/console/runs/{batch}")
    assert "已放行" in report.text and DECISION_FORM.findall(report.text) == []
    client.cookies.clear()


def test_ops_discard_from_the_report_page(client: TestClient, ops: str, batches: Batches, database: str) -> None:
    batch = batches.new()
    signed_in(client, "ops")
    report = client.get(f"/console/runs/{batch}")
    assert {(str(batch), "release"), (str(batch), "discard")} <= set(DECISION_FORM.findall(report.text))
    discarded = post(client, f"/console/ops/quarantine/{batch}/discard", reason="数据提供方将重新导出", back="report")
    assert discarded.status_code == 303 and discarded.headers["location"] == f"/console/runs/{batch}"
    assert run_of(client, batch, api_as(client, "ops"))["outcome"] == "discarded"
    decided = audit_events(database, "quarantine.discard", outcome="done", principal="user:ops")[-1]
    assert decided.detail["batch_id"] == batch and decided.detail["reason"] == "数据提供方将重新导出"
    client.cookies.clear()


def test_a_release_without_a_reason_is_refused_keeps_what_was_typed_and_changes_nothing(
    client: TestClient, ops: str, batches: Batches, database: str
) -> None:
    batch = batches.new()
    before = len(audit_events(database, "quarantine.release"))
    signed_in(client, "ops")
    blank = post(client, f"/console/ops/quarantine/{batch}/release", reason="   ")
    assert blank.status_code == 422 and "请填写处理理由" in blank.text
    too_long = "理" * 1001
    refused = post(client, f"/console/ops/quarantine/{batch}/release", reason=too_long, force="true")
    form = refused.text.split(f'id="reason-release-{batch}"')[1].split("</form>")[0]
    assert refused.status_code == 422 and f'value="{too_long}"' in form and 'aria-invalid="true"' in form
    assert f'aria-describedby="error-{batch}"' in form and f'id="error-{batch}"' in refused.text
    assert "checked" in form  # the box ticked stays ticked
    english = client.post(f"/console/ops/quarantine/{batch}/discard", headers={"Accept-Language": "en"},
                          data={"csrf_token": client.cookies["datashare_csrf"], "reason": ""})  # fmt: skip
    assert english.status_code == 422 and "Give the reason for your decision" in english.text
    assert run_of(client, batch, api_as(client, "ops"))["outcome"] == "quarantined"
    assert len(audit_events(database, "quarantine.release")) == before
    client.cookies.clear()


def test_a_batch_decided_already_is_refused_with_the_reason_kept(client: TestClient, ops: str,
                                                                  batches: Batches) -> None:  # fmt: skip
    batch = batches.new()
    signed_in(client, "ops")
    assert post(client, f"/console/ops/quarantine/{batch}/discard", reason="重复导出").status_code == 303
    again = post(client, f"/console/ops/quarantine/{batch}/release", reason="再次放行", back="report")
    assert again.status_code == 409 and "该批次已不在隔离中" in again.text
    assert run_of(client, batch, api_as(client, "ops"))["outcome"] == "discarded"
    client.cookies.clear()


def test_releasing_a_batch_older_than_the_current_version_needs_force(client: TestClient, ops: str,
                                                                      batches: Batches) -> None:  # fmt: skip
    older, newer = batches.new(), batches.new()
    signed_in(client, "ops")
    assert post(client, f"/console/ops/quarantine/{newer}/release", reason="核对无误").status_code == 303
    refused = post(client, f"/console/ops/quarantine/{older}/release", reason="旧批次也要放行")
    assert refused.status_code == 409 and "较新的版本" in refused.text and 'value="旧批次也要放行"' in refused.text
    assert run_of(client, older, api_as(client, "ops"))["outcome"] == "quarantined"
    forced = post(client, f"/console/ops/quarantine/{older}/release", reason="旧批次也要放行", force="true")
    assert forced.status_code == 303
    assert run_of(client, older, api_as(client, "ops"))["outcome"] == "released"
    client.cookies.clear()


def test_a_forged_form_is_refused_and_changes_nothing(client: TestClient, ops: str, batches: Batches) -> None:
    batch = batches.new()
    signed_in(client, "ops")
    forged = client.post(f"/console/ops/quarantine/{batch}/release", data={"csrf_token": "forged", "reason": "x1"})
    assert forged.status_code == 403 and "表单已过期或并非来自本站" in forged.text
    other_site = client.post(f"/console/ops/quarantine/{batch}/discard", headers={"Origin": "https://evil.example"},
                             data={"csrf_token": client.cookies["datashare_csrf"], "reason": "x1"})  # fmt: skip
    assert other_site.status_code == 403
    assert run_of(client, batch, api_as(client, "ops"))["outcome"] == "quarantined"
    client.cookies.clear()


def test_people_without_runs_read_get_no_link_and_a_friendly_refusal(client: TestClient, ops: str,
                                                                      batches: Batches) -> None:  # fmt: skip
    batch = batches.new()
    for username in ("zsj-user", "officer"):
        signed_in(client, username)
        assert 'href="/console/ops"' not in client.get("/console/").text
        for path in ("/console/ops", "/console/ops/quarantine"):
            refused = client.get(path)
            assert refused.status_code == 403 and "您的角色无权进行此操作。" in refused.text, path
            assert refused.headers["content-type"].startswith("text/html") and "Traceback" not in refused.text
        assert client.get(f"/console/runs/{batch}").status_code == 403
        assert client.get(f"/console/runs/{batch}/failing-rows.csv").status_code == 403
        refused = post(client, f"/console/ops/quarantine/{batch}/discard", reason="不该由我处理")
        assert refused.status_code == 403
    signed_in(client, "psga-steward")
    assert 'href="/console/ops"' in client.get("/console/").text
    client.cookies.clear()
    anonymous = client.get("/console/ops", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/sign-in?next=/console/ops"
    filtered = client.get("/console/ops", params={"status": "late", "department": "psga"}, follow_redirects=False)
    assert filtered.headers["location"] == "/console/sign-in?next=/console/ops%3Fstatus%3Dlate%26department%3Dpsga"
    assert client.get("/console/runs/abc").status_code == 404
    signed_in(client, "ops")
    assert client.get("/console/runs/2000000000").status_code == 404
    assert client.get("/console/runs/99999999999").status_code == 404
    assert client.post("/console/ops/quarantine/1/publish", data={"csrf_token": csrf_of(client, "/console/ops"),
                                                                  "reason": "x"}).status_code == 404  # fmt: skip
    client.cookies.clear()


# --- the report -------------------------------------------------------------------------------------------------


def test_the_report_shows_each_failing_check_with_its_rows_and_the_csv(client: TestClient, ops: str,
                                                                       batches: Batches) -> None:  # fmt: skip
    batch = batches.new()
    headers = api_as(client, "ops")
    api = run_of(client, batch, headers)
    failing = [check for check in api["report"]["checks"] if not check["success"]]
    signed_in(client, "psga-steward")  # a steward reads their department's reports too
    report = client.get(f"/console/runs/{batch}")
    assert report.status_code == 200 and "质量报告" in report.text
    for check in failing:
        assert ", ".join(map(str, check["failing_rows"])) in report.text
        for example in check["examples"]:
            assert f"<code>{html.escape(example)}</code>" in report.text
    assert [check["failing_rows"] for check in failing] == [[244, 518]]
    download = client.get(f"/console/runs/{batch}/failing-rows.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.content == client.get(f"/runs/{batch}/failing-rows", headers=headers).content
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {int(row["row"]) for row in rows} == {244, 518}
    published = client.get("/runs", params={"item": POPULATION, "outcome": "published"}, headers=headers).json()
    first = published["runs"][-1]["batch"]
    none = client.get(f"/console/runs/{first}/failing-rows.csv")
    assert none.status_code == 404 and "没有失败行文件" in none.text
    client.cookies.clear()
