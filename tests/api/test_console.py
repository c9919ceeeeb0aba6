"""The web console over HTTP (the browser journeys are in tests/console): sign-in with a server-side session, CSRF
on every form, the same visibility as the API, languages, and friendly error pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.console.messages import missing
from catalog.access.models import ConsoleSession
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope, utcnow
from tests.api.conftest import PASSWORD, POPULATION_REQUEST, USERS, bearer, login, revoke_every_subscription

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/console/sign-in") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found
    return found.group(1)


def signed_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    client.cookies.clear()
    token = csrf_of(client)
    response = client.post("/console/sign-in", data={"csrf_token": token, "username": username, "password": password},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text
    return client


def codes_listed(html: str) -> set[str]:
    return set(re.findall(r'href="/console/items/([^"]+)"', html))


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_every_string_of_the_console_is_in_both_catalogs(language: str) -> None:
    assert missing(language) == set()


def test_chinese_by_default_english_when_the_browser_asks_and_the_choice_is_remembered(client: TestClient) -> None:
    client.cookies.clear()
    assert "登录" in client.get("/console/sign-in").text
    english = client.get("/console/sign-in", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert "Sign in" in english.text and 'lang="en"' in english.text

    chosen = client.post("/console/language", data={"csrf_token": csrf_of(client), "language": "en",
                                                    "next": "/console/"}, follow_redirects=False)  # fmt: skip
    assert chosen.status_code == 303 and chosen.headers["location"] == "/console/"
    assert "Catalog" in client.get("/console/", headers={"Accept-Language": "zh-CN"}).text
    client.cookies.clear()


def test_a_wrong_password_keeps_the_name_says_what_to_fix_and_is_audited(client: TestClient, database: str) -> None:
    client.cookies.clear()
    token = csrf_of(client)
    response = client.post("/console/sign-in", data={"csrf_token": token, "username": "zsj-user",
                                                     "password": "not-the-password"})  # fmt: skip
    assert response.status_code == 401
    assert 'value="zsj-user"' in response.text and "用户名或密码不正确" in response.text
    assert "not-the-password" not in response.text
    engine = make_engine(database)
    with session_scope(engine) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (event.principal, event.action, event.outcome) == ("user:zsj-user", "login", "denied")
        assert event.detail == {"channel": "console"}
    engine.dispose()


def test_the_session_cookie_is_http_only_and_same_site(client: TestClient) -> None:
    client.cookies.clear()
    token = csrf_of(client)
    response = client.post("/console/sign-in", data={"csrf_token": token, "username": "zsj-user",
                                                     "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    cookie = next(value for value in response.headers.get_list("set-cookie") if value.startswith("datashare_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    client.cookies.clear()


@pytest.mark.parametrize("username", [*USERS, None])
def test_the_catalog_lists_what_the_api_lists_for_the_same_person(client: TestClient, username: str | None) -> None:
    client.cookies.clear()
    headers = {}
    if username is not None:
        signed_in(client, username)
        headers = bearer(login(client, username))
    api = client.get("/items", params={"page_size": 100}, headers=headers).json()
    page = client.get("/console/", params={"page": 1})
    assert page.status_code == 200
    assert api["total"] <= 20  # the demo catalog fits one page of either
    assert codes_listed(page.text) == {item["code"] for item in api["items"]}
    client.cookies.clear()


def test_searching_chinese_keywords_finds_the_population_item(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    page = client.get("/console/", params={"text": "人口"})
    assert codes_listed(page.text) == {"PSGA-RK-0001"}
    item = client.get("/console/items/PSGA-RK-0001")
    assert item.status_code == 200 and "公民身份号码" in item.text
    client.cookies.clear()


def test_an_item_one_may_not_see_is_a_friendly_404_page(client: TestClient) -> None:
    client.cookies.clear()
    response = client.get("/console/items/NO-SUCH-0001")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    missing_page = client.get("/console/no/such/page", headers={"Accept-Language": "en"})
    assert missing_page.status_code == 404 and "There is no such page." in missing_page.text


def test_a_forged_form_post_is_refused_and_changes_nothing(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    forged = client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and "表单已过期或并非来自本站" in forged.text
    no_token = client.post("/console/sign-out", data={})
    assert no_token.status_code == 403
    other_site = client.post("/console/sign-out", data={"csrf_token": client.cookies["datashare_csrf"]},
                             headers={"Origin": "https://evil.example"})  # fmt: skip
    assert other_site.status_code == 403
    assert "zsj-user" in client.get("/console/").text  # still signed in
    client.cookies.clear()


def test_signing_out_ends_the_session_even_for_a_copy_of_the_cookie(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    copied = client.cookies["datashare_session"]
    out = client.post("/console/sign-out", data={"csrf_token": client.cookies["datashare_csrf"]},
                      follow_redirects=False)  # fmt: skip
    assert out.status_code == 303
    client.cookies.set("datashare_session", copied, path="/console")
    assert "zsj-user" not in client.get("/console/").text
    client.cookies.clear()


def test_an_idle_session_expires(client: TestClient, database: str) -> None:
    signed_in(client, "zsj-user")
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(hours=2)))
    engine.dispose()
    assert "zsj-user" not in client.get("/console/").text
    client.cookies.clear()


def test_signing_in_never_sends_the_person_to_another_site(client: TestClient) -> None:
    client.cookies.clear()
    token = csrf_of(client)
    form = {"csrf_token": token, "username": "zsj-user", "password": PASSWORD, "next": "https://evil.example/"}
    response = client.post("/console/sign-in", data=form, follow_redirects=False)
    assert response.headers["location"] == "/console/"
    client.cookies.clear()


def test_a_decision_posted_by_someone_who_may_not_take_it_is_refused_and_changes_nothing(
    client: TestClient, database: str
) -> None:
    revoke_every_subscription(database)
    made = client.post("/subscriptions", json=POPULATION_REQUEST, headers=bearer(login(client, "zsj-user")))
    assert made.status_code == 201, made.text
    number = made.json()["id"]

    signed_in(client, "zsj-user")  # the consumer
    own = client.post(f"/console/subscriptions/{number}/approve", data={"csrf_token": client.cookies["datashare_csrf"]})
    assert own.status_code == 422 and "您的角色无权进行此操作" in own.text
    assert f'action="/console/subscriptions/{number}/approve"' not in own.text  # and no button offers it

    signed_in(client, "wjj-user")  # not a party
    stranger = client.post(f"/console/subscriptions/{number}/reject",
                           data={"csrf_token": client.cookies["datashare_csrf"], "reason": "不需要"})  # fmt: skip
    assert stranger.status_code == 404

    steward = client.get(f"/subscriptions/{number}", headers=bearer(login(client, "psga-steward")))
    assert steward.json()["status"] == "requested"
    client.cookies.clear()


def test_a_steward_sees_the_request_awaiting_approval_and_marks_it_read(client: TestClient, database: str) -> None:
    revoke_every_subscription(database)
    made = client.post("/subscriptions", json=POPULATION_REQUEST, headers=bearer(login(client, "zsj-user")))
    assert made.status_code == 201, made.text
    signed_in(client, "psga-steward")
    page = client.get("/console/notifications")
    number = made.json()["id"]
    assert "有申请待审批" in page.text and f"/console/subscriptions/{number}" in page.text
    said = f"zsj 申请订阅 人口基本信息（PSGA-RK-0001）的 3 个字段（订阅 {number}），待提供部门审批。"
    assert said in page.text and "asks to subscribe" not in page.text
    english = client.get("/console/notifications", headers={"Accept-Language": "en"}).text
    assert (
        f"zsj asks to subscribe to 3 field(s) of 人口基本信息 (PSGA-RK-0001): subscription {number} awaits the "
        "provider&#39;s approval."
        in english
        and "申请订阅" not in english
    )
    notice = re.search(r'action="/console/notifications/(\d+)/read"', page.text)
    assert notice
    read = client.post(f"/console/notifications/{notice.group(1)}/read",
                       data={"csrf_token": client.cookies["datashare_csrf"]}, follow_redirects=False)  # fmt: skip
    assert read.status_code == 303
    assert f'action="/console/notifications/{notice.group(1)}/read"' not in client.get("/console/notifications").text
    signed_in(client, "wjj-user")  # another department's notification is no one else's to mark
    other = client.post(f"/console/notifications/{notice.group(1)}/read",
                        data={"csrf_token": client.cookies["datashare_csrf"]})  # fmt: skip
    assert other.status_code == 404
    client.cookies.clear()
