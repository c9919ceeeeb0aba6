"""The console's machine tokens (a department's stewards) and audit trail (data officers), over HTTP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.test_console import signed_in

SECRET_SHOWN = re.compile(r'<code class="secret">(dst_[^<]+)</code>')


def post(client: TestClient, path: str, **form: str) -> object:
    return client.post(path, data={"csrf_token": client.cookies["datashare_csrf"], **form}, follow_redirects=False)


def test_a_steward_creates_a_token_seen_once_that_works_until_revoked(client: TestClient) -> None:
    signed_in(client, "zsj-steward")
    made = client.post("/console/tokens", data={"csrf_token": client.cookies["datashare_csrf"],
                                                "name": "12345 热线系统", "days": "30"})  # fmt: skip
    assert made.status_code == 201
    secret = SECRET_SHOWN.search(made.text)
    assert secret
    token = secret.group(1)
    assert client.get("/items", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    listed = client.get("/console/tokens")
    assert "12345 热线系统" in listed.text and token not in listed.text  # shown once, never again
    token_id = re.search(r'action="/console/tokens/(\d+)/revoke"', listed.text)
    assert token_id
    revoked = client.post(f"/console/tokens/{token_id.group(1)}/revoke",
                          data={"csrf_token": client.cookies["datashare_csrf"]}, follow_redirects=False)  # fmt: skip
    assert revoked.status_code == 303
    assert client.get("/items", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    client.cookies.clear()


def test_a_token_without_a_name_is_refused_and_says_what_to_fix(client: TestClient) -> None:
    signed_in(client, "zsj-steward")
    refused = client.post("/console/tokens", data={"csrf_token": client.cookies["datashare_csrf"], "name": ""})
    assert refused.status_code == 422 and "请填写令牌名称" in refused.text
    client.cookies.clear()


def test_people_who_may_not_manage_tokens_get_no_link_and_no_page(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    assert 'href="/console/tokens"' not in client.get("/console/").text
    assert client.get("/console/tokens").status_code == 403
    forged_revoke = client.post("/console/tokens/1/revoke", data={"csrf_token": client.cookies["datashare_csrf"]})
    assert forged_revoke.status_code in (403, 404)
    client.cookies.clear()


def test_an_officer_reads_the_audit_trail_with_filters(client: TestClient) -> None:
    signed_in(client, "officer")
    page = client.get("/console/audit", params={"action": "login", "principal": "user:officer"})
    assert page.status_code == 200
    assert "user:officer" in page.text and "<code>login</code>" in page.text
    bad = client.get("/console/audit", params={"since": "yesterday"})
    assert bad.status_code == 200 and "日期格式" in bad.text
    client.cookies.clear()


def test_the_audit_trail_is_for_officers_only(client: TestClient) -> None:
    signed_in(client, "psga-steward")
    assert 'href="/console/audit"' not in client.get("/console/").text
    assert client.get("/console/audit").status_code == 403
    client.cookies.clear()


def test_the_overview_draws_the_platform_for_officers_and_nobody_else(client: TestClient) -> None:
    signed_in(client, "officer")
    page = client.get("/console/overview")
    assert page.status_code == 200
    assert page.text.count("<svg") == 3 and "各部门字段分级分布" in page.text  # not freshness: not an officer's
    assert ">psga</text>" in page.text  # a department's bar, labelled
    signed_in(client, "psga-steward")
    assert client.get("/console/overview").status_code == 403
    client.cookies.clear()


def test_an_officer_downloads_the_classification_reports_and_a_steward_cannot(client: TestClient) -> None:
    signed_in(client, "officer")
    levels = client.get("/console/review/reports/levels.csv")
    assert levels.status_code == 200 and levels.headers["content-type"].startswith("text/csv")
    assert "psga" in levels.text
    signed_in(client, "psga-steward")
    assert 'href="/console/review/reports/' not in client.get("/console/review").text
    assert client.get("/console/review/reports/levels.csv").status_code == 403
    client.cookies.clear()
