"""Machine tokens and the audit trail in a real browser (each page screenshotted and checked with axe-core)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.api.console.conftest import looked_at


def test_a_steward_creates_and_revokes_a_machine_token(open_page: Callable[..., Page]) -> None:
    steward = open_page("psga-steward")
    steward.get_by_role("link", name="机器令牌").click()
    steward.get_by_label("使用的系统").fill("人口库同步")
    steward.get_by_role("button", name="创建令牌").click()
    expect(steward.locator("code.secret")).to_contain_text("dst_")
    looked_at(steward, "tokens-created-zh")
    steward.get_by_role("link", name="机器令牌").click()
    expect(steward.locator("code.secret")).to_have_count(0)
    steward.get_by_role("button", name="撤销 人口库同步").click()
    expect(steward.get_by_text("已撤销")).to_be_visible()


def test_an_officer_filters_the_audit_trail(open_page: Callable[..., Page]) -> None:
    officer = open_page("officer", locale="en-US")
    officer.get_by_role("link", name="Audit trail").click()
    officer.get_by_label("Action").fill("login")
    officer.get_by_role("button", name="Search").click()
    expect(officer.locator("table.results tbody tr").first).to_contain_text("login")
    looked_at(officer, "audit-en")


def test_an_officer_looks_at_the_overview_charts(open_page: Callable[..., Page]) -> None:
    officer = open_page("officer")
    officer.get_by_role("link", name="总览").click()
    expect(officer.get_by_role("img", name="各部门字段分级分布")).to_be_visible()
    looked_at(officer, "overview-zh")
    phone = open_page("officer", locale="en-US", width=390, height=844)
    phone.get_by_role("link", name="Overview").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Overview")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    looked_at(phone, "overview-phone-en")
