"""Row-level scopes in the console: a street office asks for its own communities in the request form, the provider's
steward narrows them in the approval form (never widens them), and both see the rows granted on the subscription's
page; the preview shows only those rows."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import revoke_every_subscription, status_of
from tests.api.test_console import signed_in
from tests.api.test_console_renewal import post

Headers = dict[str, dict[str, str]]
ITEM = "PSGA-RK-0001"


def test_a_scope_asked_for_narrowed_and_shown_in_the_console(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    revoke_every_subscription(database)
    signed_in(client, "zsj-user")
    form = client.get(f"/console/items/{ITEM}/request").text
    assert "数据范围（可选）" in form and 'name="scope_field_1"' in form
    asked = {"fields": ["公民身份号码", "所属社区"], "purpose": "街道办核对辖区居民", "legal_basis": "数据条例",
             "period_days": "30", "scope_field_1": "所属社区", "scope_in_1": "碧岭社区、汤坑社区"}  # fmt: skip
    wrong = {**asked, "scope_field_2": "出生日期", "scope_from_2": "1999-99-01"}
    bad = client.post(f"/console/items/{ITEM}/request", data={"csrf_token": client.cookies["datashare_csrf"], **wrong},
                      follow_redirects=False)  # fmt: skip
    assert bad.status_code == 422 and "出生日期" in bad.text and 'value="碧岭社区、汤坑社区"' in bad.text  # kept
    made = client.post(f"/console/items/{ITEM}/request", data={"csrf_token": client.cookies["datashare_csrf"], **asked},
                       follow_redirects=False)  # fmt: skip
    assert made.status_code == 303
    page = made.headers["location"]
    number = int(page.rsplit("/", 1)[1])
    assert "所属社区 ∈ 汤坑社区、碧岭社区" in client.get(page).text

    signed_in(client, "psga-steward")
    shown = client.get(page).text
    assert 'value="汤坑社区、碧岭社区"' in shown  # the approval form starts from the rows asked for
    assert post(client, f"{page}/approve", scope_field_1="所属社区", scope_in_1="碧岭社区、马峦社区") == 422
    assert status_of(client.get(f"/subscriptions/{number}", headers=as_["zsj-user"]), 200)["status"] == "requested"
    assert post(client, f"{page}/approve", scope_field_1="所属社区", scope_in_1="碧岭社区") == 303
    signed_in(client, "officer")
    officer_view = client.get(page).text
    assert "所属社区 ∈ 碧岭社区" in officer_view and "所属社区 ∈ 汤坑社区、碧岭社区" in officer_view  # granted, asked
    assert post(client, f"{page}/approve", level="3", scope_field_1="所属社区", scope_in_1="碧岭社区") == 303

    signed_in(client, "zsj-user")
    preview = client.get(f"/console/items/{ITEM}/preview", headers={"sec-fetch-site": "same-origin"}).text
    assert "碧岭社区" in preview and "汤坑社区" not in preview and "马峦社区" not in preview
    client.cookies.clear()
