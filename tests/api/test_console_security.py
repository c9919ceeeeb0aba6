"""The console's defences, each shown by the request that a careful reviewer used to break it: it shows and allows
what the API would for the same person, counts requests as the API does, binds form tokens to the session, and
keeps its error pages in the console's security headers."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.api.conftest import PASSWORD
from tests.api.test_console import csrf_of, signed_in

FORGED = "B" * 43


def test_the_item_page_shows_freshness_only_to_who_may_read_it_through_the_api(client: TestClient) -> None:
    signed_in(client, "wjj-user")
    assert "时效" not in client.get("/console/items/PSGA-RK-0001").text  # GET /items/{code}/freshness: 403
    signed_in(client, "psga-steward")
    assert "时效" in client.get("/console/items/PSGA-RK-0001").text
    client.cookies.clear()


def test_the_overview_shows_each_chart_only_to_who_may_read_its_figures(client: TestClient) -> None:
    signed_in(client, "officer")
    officer = client.get("/console/overview").text
    assert "各部门字段分级分布" in officer and "近 30 天共享活动" in officer
    assert "各部门数据管道时效" not in officer  # officers may not read /freshness
    client.cookies.clear()


def test_a_token_of_the_right_shape_but_not_the_sessions_is_refused(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    client.cookies.set("datashare_csrf", FORGED, path="/console")
    forged = client.post("/console/sign-out", data={"csrf_token": FORGED})
    assert forged.status_code == 403
    assert "zsj-user" in client.get("/console/").text
    client.cookies.clear()


def test_signing_in_issues_a_new_form_token_and_ends_the_session_before(client: TestClient, database: str) -> None:
    client.cookies.clear()
    before = csrf_of(client)
    signed_in_once = client.post("/console/sign-in", data={"csrf_token": before, "username": "zsj-user",
                                                           "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    first_session = signed_in_once.cookies["datashare_session"]
    after = csrf_of(client, "/console/")
    assert after != before
    again = client.post("/console/sign-in", data={"csrf_token": after, "username": "wjj-user", "password": PASSWORD},
                        follow_redirects=False)  # fmt: skip
    assert again.status_code == 303
    client.cookies.set("datashare_session", first_session, path="/console")
    assert "zsj-user" not in client.get("/console/").text  # the first person's session ended
    client.cookies.clear()


def test_signing_out_is_audited(client: TestClient, database: str) -> None:
    signed_in(client, "wjj-user")
    client.post("/console/sign-out", data={"csrf_token": csrf_of(client, "/console/")})
    engine = make_engine(database)
    with session_scope(engine) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert (event.principal, event.action, event.outcome, event.detail) == (
            "user:wjj-user", "logout", "done", {"channel": "console"})  # fmt: skip
    engine.dispose()
    client.cookies.clear()


def test_a_user_name_with_control_characters_is_refused_before_anything_is_recorded(
    client: TestClient, database: str
) -> None:
    client.cookies.clear()
    token = csrf_of(client)
    refused = client.post("/console/sign-in", data={"csrf_token": token, "username": "evil\r\nuser:forged",
                                                    "password": "whatever"})  # fmt: skip
    assert refused.status_code == 422
    engine = make_engine(database)
    with session_scope(engine) as session:
        assert not session.scalars(select(AuditEvent).where(AuditEvent.principal.contains("forged"))).first()
    engine.dispose()


def test_a_data_read_from_a_link_on_another_site_is_refused(client: TestClient) -> None:
    signed_in(client, "zsj-user")
    cross = client.get("/console/items/PSGA-RK-0001/data.csv", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and "请从本平台的页面打开数据" in cross.text
    client.cookies.clear()


def test_error_pages_carry_the_consoles_security_headers(client: TestClient) -> None:
    missing = client.get("/console/no/such/page")
    assert missing.status_code == 404
    assert "frame-ancestors 'none'" in missing.headers["content-security-policy"]
    assert missing.headers["x-frame-options"] == "DENY"


def test_the_anonymous_are_counted_as_by_the_api(client: TestClient) -> None:
    client.cookies.clear()
    statuses = [client.get("/console/sign-in").status_code for _ in range(400)]
    assert 429 in statuses
    limited = next(i for i, status in enumerate(statuses) if status == 429)
    refused = client.get("/console/sign-in")
    assert refused.status_code == 429 and "Retry-After" in refused.headers and limited > 50
    assert re.search("请求过于频繁", refused.text)
