"""Journeys through the catalog in a real browser: finding the population item by searching 人口, reading it, the
language switch, a phone's screen, and a forged form post."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.api.conftest import PASSWORD
from tests.api.console.conftest import looked_at


def test_a_department_user_finds_the_population_item_by_searching_in_chinese(open_page: Callable[..., Page]) -> None:
    page = open_page("zsj-user")
    looked_at(page, "catalog-zh")

    page.get_by_label("关键词").fill("人口")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_text("共 1 个数据项")).to_be_visible()
    looked_at(page, "catalog-search-zh")

    page.get_by_role("link", name="人口基本信息").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("人口基本信息")
    expect(page.get_by_role("cell", name="公民身份号码").first).to_be_visible()
    looked_at(page, "item-zh")


def test_the_language_switch_is_remembered_from_page_to_page(open_page: Callable[..., Page]) -> None:
    page = open_page("zsj-user")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalog")
    page.get_by_role("link", name="人口基本信息").click()
    expect(page.get_by_text("Highest level")).to_be_visible()
    looked_at(page, "item-en")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_text("最高分级")).to_be_visible()


def test_english_browsers_get_english_and_sign_in_works_in_it(open_page: Callable[..., Page]) -> None:
    page = open_page("wjj-user", locale="en-US")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    looked_at(page, "catalog-en")


def test_a_wrong_password_keeps_the_name_and_says_what_to_fix(open_page: Callable[..., Page], console: str) -> None:
    page = open_page()
    page.goto(f"{console}/sign-in")
    page.get_by_label("用户名").fill("zsj-user")
    page.get_by_label("密码").fill("not the password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码不正确。")
    expect(page.get_by_label("用户名")).to_have_value("zsj-user")
    looked_at(page, "sign-in-refused-zh")


def test_the_anonymous_see_open_data_only_and_no_sign_out(open_page: Callable[..., Page], console: str) -> None:
    page = open_page()
    page.goto(f"{console}/")
    expect(page.get_by_role("link", name="登录")).to_be_visible()
    expect(page.get_by_role("button", name="退出")).to_have_count(0)
    expect(page.get_by_role("link", name="人口基本信息")).to_have_count(0)  # conditional sharing, not open data
    looked_at(page, "catalog-anonymous-zh")


def test_a_phone_screen_shows_the_catalog_without_sideways_scrolling(open_page: Callable[..., Page]) -> None:
    page = open_page("zsj-user", width=390, height=844)
    page.get_by_label("关键词").fill("人口")
    with page.expect_navigation():  # the item is listed before the search too: wait for the results' page
        page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="人口基本信息")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    looked_at(page, "catalog-phone-zh")


def test_a_forged_form_post_is_refused(open_page: Callable[..., Page]) -> None:
    page = open_page("zsj-user")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("出错了")
    expect(page.get_by_text("表单已过期或并非来自本站")).to_be_visible()
    looked_at(page, "forged-form-zh")


def test_the_keyboard_alone_signs_in_finds_an_item_and_opens_it(open_page: Callable[..., Page], console: str) -> None:
    page = open_page()
    page.goto(f"{console}/sign-in")

    def tab_to(check: str, most: int = 40) -> None:
        """Tab until the focused element passes the JavaScript check (a keyboard user's way through the page)."""
        for _ in range(most):
            page.keyboard.press("Tab")
            if page.evaluate(f"(() => {{ const e = document.activeElement; return {check}; }})()"):
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"no visible focus on {check}"
                return
        raise AssertionError(f"Tab never reached {check}")

    tab_to("e.classList.contains('skip')")  # the first stop skips the header
    page.keyboard.press("Enter")
    tab_to("e.name === 'username'")
    page.keyboard.type("zsj-user")
    tab_to("e.name === 'password'")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console}/")

    tab_to("e.name === 'text'")
    page.keyboard.type("人口")
    page.keyboard.press("Enter")
    expect(page.get_by_text("共 1 个数据项")).to_be_visible()
    tab_to("e.tagName === 'A' && e.getAttribute('href').endsWith('/items/PSGA-RK-0001')", most=80)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("人口基本信息")
    tab_to("e.getAttribute('href') && e.getAttribute('href').includes('/request')", most=80)
    page.keyboard.press("Enter")
    expect(page.get_by_label("用途")).to_be_visible()
