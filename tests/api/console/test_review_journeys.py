"""Classification review in a real browser: a data officer approves five pending fields of a new item in one
decision with a reason; a steward sees the queue of their department but no decision, and proposes a change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.api.conftest import bearer, login
from tests.api.console.conftest import looked_at

NEW_ITEM = "PSGA-RK-0009"


def draft_copy_of_population(client: TestClient, code: str) -> dict[str, Any]:
    """A new draft item of psga's, declared like the population register: every field waits for an officer."""
    declared = client.get("/items/PSGA-RK-0001", headers=bearer(login(client, "officer"))).json()
    for key in ("status", "level", "created_at", "updated_at"):
        declared.pop(key, None)
    declared |= {"code": code, "title": "人口基本信息(副本)", "source_system": None}
    made = client.post("/items", json=declared, headers=bearer(login(client, "psga-steward")))
    assert made.status_code == 201, made.text
    return declared


@pytest.fixture(scope="module")
def pending_item(client: TestClient) -> dict[str, Any]:
    return draft_copy_of_population(client, NEW_ITEM)


def test_an_officer_approves_five_fields_in_one_decision(
    open_page: Callable[..., Page], console: str, pending_item: dict[str, Any], client: TestClient
) -> None:
    officer = open_page("officer")
    officer.get_by_role("link", name="分级审核").click()
    officer.get_by_role("link", name=NEW_ITEM).click()
    looked_at(officer, "review-item-zh")
    names = [field["name"] for field in pending_item["fields"]][:5]
    for name in names:
        officer.get_by_role("checkbox", name=name, exact=True).check()
    officer.get_by_label("理由").fill("与人口基本信息分级一致")
    officer.get_by_role("button", name="审定").click()
    expect(officer.get_by_role("status")).to_have_text("已审定 5 个字段。")
    left = officer.locator("input[name=field]")
    expect(left).to_have_count(len(pending_item["fields"]) - 5)
    looked_at(officer, "review-item-decided-zh")

    history = client.get(f"/items/{NEW_ITEM}/review-history", headers=bearer(login(client, "officer"))).json()
    assert sorted(entry["field"] for entry in history) == sorted(names)
    assert {entry["reason"] for entry in history} == {"与人口基本信息分级一致"}


def test_a_change_without_a_reason_is_refused_and_keeps_the_choice(
    open_page: Callable[..., Page], console: str, pending_item: dict[str, Any]
) -> None:
    officer = open_page("officer", locale="en-US")
    officer.goto(f"{console}/review/items/{NEW_ITEM}")
    last = pending_item["fields"][-1]["name"]
    officer.get_by_role("checkbox", name=last, exact=True).check()
    officer.get_by_label("Change to").check()
    officer.locator("#level").select_option("4")
    officer.get_by_role("button", name="Decide").click()
    expect(officer.get_by_role("alert")).to_contain_text("Give a reason")
    expect(officer.get_by_role("checkbox", name=last, exact=True)).to_be_checked()
    looked_at(officer, "review-refused-en")


def test_a_steward_reads_the_queue_and_proposes_but_does_not_decide(
    open_page: Callable[..., Page], console: str, pending_item: dict[str, Any]
) -> None:
    steward = open_page("psga-steward")
    steward.goto(f"{console}/review/items/{NEW_ITEM}")
    expect(steward.get_by_role("button", name="审定")).to_have_count(0)
    expect(steward.locator("input[name=field]")).to_have_count(0)
    steward.get_by_label("字段", exact=True).select_option(pending_item["fields"][0]["name"])
    steward.locator("#p-level").select_option("4")
    steward.locator("#p-reason").fill("含完整身份证号")
    steward.get_by_role("button", name="提交建议").click()
    expect(steward.get_by_text("psga-steward 建议 4 级")).to_be_visible()
    looked_at(steward, "review-steward-zh")

    user = open_page("zsj-user")
    expect(user.get_by_role("link", name="分级审核")).to_have_count(0)
