"""The subscription workflow in a real browser: a department user requests three fields of the population item,
the provider's steward approves, a data officer approves at level 2, and the user previews the data masked as the API
serves it and downloads the CSV. On the way, nobody sees a button for what they may not do."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.api.console.conftest import looked_at

FIELDS = ("公民身份号码", "姓名", "所属社区")


def test_request_approve_twice_preview_and_download(
    open_page: Callable[..., Page], console: str, published: list[str]
) -> None:
    user = open_page("zsj-user")
    user.get_by_label("关键词").fill("人口")
    user.keyboard.press("Enter")
    user.get_by_role("link", name="人口基本信息").click()
    user.get_by_role("link", name="申请订阅").click()
    for field in FIELDS:
        user.get_by_role("checkbox", name=field).check()
    user.get_by_label("用途").fill("核对诉求人户籍信息")
    user.get_by_label("法律依据").fill("《深圳经济特区数据条例》第四十条")
    looked_at(user, "request-zh")
    user.get_by_role("button", name="提交申请").click()
    expect(user.get_by_text("待提供部门审批")).to_be_visible()
    expect(user.get_by_role("button", name="批准")).to_have_count(0)  # the consumer does not decide
    subscription = user.url
    looked_at(user, "subscription-requested-zh")

    steward = open_page("psga-steward")
    steward.get_by_role("link", name="订阅").click()
    expect(steward.get_by_role("heading", name="待您审批")).to_be_visible()
    looked_at(steward, "subscriptions-steward-zh")
    steward.goto(subscription)
    steward.get_by_role("button", name="批准").click()
    expect(steward.get_by_text("待数据管理员审批")).to_be_visible()
    expect(steward.get_by_role("button", name="批准")).to_have_count(0)  # the second approval is an officer's

    officer = open_page("officer", locale="en-US")
    officer.goto(subscription)
    officer.get_by_label("Approve up to").select_option("2")
    looked_at(officer, "subscription-officer-en")
    officer.get_by_role("button", name="Approve").click()
    expect(officer.get_by_text("Active", exact=True)).to_be_visible()

    user.goto(subscription)
    expect(user.get_by_text("生效中", exact=True)).to_be_visible()
    user.get_by_role("link", name="预览数据").click()
    expect(user.get_by_role("heading", level=1)).to_contain_text("数据预览")
    first_id = user.locator("table.data tbody tr").first.locator("td").first.inner_text()
    assert first_id not in published and "*" in first_id  # level 3 above the approved 2: masked
    looked_at(user, "preview-zh")
    with user.expect_download() as download:
        user.get_by_role("link", name="下载 CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert set(rows[0]) == {"_row", *FIELDS}  # as the API serves it: the row number and the approved fields
    assert not {row["公民身份号码"] for row in rows} & set(published)


def test_people_see_no_button_for_what_they_may_not_do(open_page: Callable[..., Page], console: str) -> None:
    steward = open_page("psga-steward")
    steward.goto(f"{console}/items/PSGA-RK-0001")
    expect(steward.get_by_role("heading", level=1)).to_have_text("人口基本信息")
    expect(steward.get_by_role("link", name="申请订阅")).to_have_count(0)  # its own department's item
    expect(steward.get_by_role("link", name="预览数据")).to_have_count(0)

    stranger = open_page("wjj-user")
    stranger.goto(f"{console}/subscriptions/1")
    expect(stranger.get_by_role("heading", level=1)).to_have_text("出错了")  # not a party: as if it did not exist
    looked_at(stranger, "subscription-not-yours-zh")


def test_a_verification_subscription_verifies_records_and_reads_no_data(
    open_page: Callable[..., Page], console: str, samples_dir: Path
) -> None:
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        resident = next(csv.DictReader(export))
    user = open_page("wjj-user")
    user.goto(f"{console}/items/PSGA-RK-0001/request")
    for field in ("姓名", "所属社区"):
        user.get_by_role("checkbox", name=field).check()
    user.get_by_label("核验本部门持有的记录", exact=False).check()
    user.get_by_label("用途").fill("核验救助申请人是否为本辖区居民")
    user.get_by_label("法律依据").fill("《深圳经济特区数据条例》第四十条")
    user.get_by_role("button", name="提交申请").click()
    subscription = user.url
    for who, level in (("psga-steward", None), ("officer", "2")):
        decider = open_page(who)
        decider.goto(subscription)
        if level:
            decider.get_by_label("批准至").select_option(level)
        decider.get_by_role("button", name="批准").click()

    user.goto(subscription)
    expect(user.get_by_text("数据核验（不读取数据）")).to_be_visible()
    expect(user.get_by_role("link", name="预览数据")).to_have_count(0)
    user.get_by_role("link", name="数据核验").click()
    user.get_by_label("记录（CSV）").fill(f"公民身份号码,所属社区\n{resident['公民身份号码']},{resident['所属社区']}\n"
                                       "440300199001011234,\n")  # fmt: skip
    user.get_by_role("button", name="核验").click()
    expect(user.get_by_text("2 条记录中 1 条一致")).to_be_visible()
    expect(user.get_by_role("cell", name=resident["所属社区"])).to_be_visible()
    expect(user.get_by_text(resident["姓名"], exact=True)).to_have_count(0)  # the name masked
    looked_at(user, "verify-zh")
