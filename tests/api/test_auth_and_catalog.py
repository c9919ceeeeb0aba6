"""The API over HTTP (in process) on both backends: signing in, machine tokens, the catalog endpoints, and
problem+json errors with the right status for every kind of caller."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.limits import Limits, Rates
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.api.conftest import bearer
from tests.catalog.helpers import demo_raw


def audit_rows(database: str, action: str) -> list[AuditEvent]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
    engine.dispose()
    return rows


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"] and body["type"]
    return body


def test_a_wrong_password_is_401_and_audited(client: TestClient, database: str) -> None:
    response = client.post("/auth/login", json={"username": "zsj-user", "password": "not the password"})
    body = assert_problem(response, 401, "invalid_credentials")
    assert "not the password" not in response.text and body["detail"] == "unknown user or wrong password"
    assert response.headers["www-authenticate"] == "Bearer"
    assert any(row.outcome == "denied" and row.principal == "user:zsj-user" for row in audit_rows(database, "login"))


def test_anonymous_callers_see_published_open_data_only(client: TestClient) -> None:
    found = client.get("/items").json()
    assert [item["code"] for item in found["items"]] == ["SCJG-FR-0001"]
    assert client.get("/items/SCJG-FR-0001").json()["open_data"] is True

    assert_problem(client.get("/items/PSGA-RK-0001"), 404, "item_not_found")  # published, but not open data
    assert_problem(client.get("/items/NOPE-0001"), 404, "item_not_found")


def test_signed_in_callers_see_every_published_item(client: TestClient, tokens: dict[str, str]) -> None:
    found = client.get("/items", headers=bearer(tokens["zsj-user"])).json()
    assert [item["code"] for item in found["items"]] == ["PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"]
    assert client.get("/items/PSGA-RK-0001", headers=bearer(tokens["zsj-user"])).status_code == 200


def test_only_the_owning_departments_stewards_register_change_and_move_items(
    client: TestClient, tokens: dict[str, str], database: str
) -> None:
    declaration = copy.deepcopy(next(item for item in demo_raw()["items"] if item["code"] == "PSGA-RK-0001"))
    declaration.update(code="PSGA-RK-0099", title="测试人口")
    declaration.pop("status", None)

    assert_problem(client.post("/items", json=declaration), 401, "unauthenticated")
    assert_problem(client.post("/items", json=declaration, headers=bearer(tokens["zsj-steward"])), 403, "forbidden")
    assert_problem(client.post("/items", json=declaration, headers=bearer(tokens["zsj-user"])), 403, "forbidden")
    created = client.post("/items", json=declaration, headers=bearer(tokens["psga-steward"]))
    assert created.status_code == 201 and created.json()["status"] == "draft"
    # a draft: its department and the officers see it, other departments do not even learn it exists
    assert client.get("/items/PSGA-RK-0099", headers=bearer(tokens["officer"])).status_code == 200
    assert_problem(client.get("/items/PSGA-RK-0099", headers=bearer(tokens["zsj-user"])), 404, "item_not_found")
    own = client.get("/items", params={"department": "psga"}, headers=bearer(tokens["psga-steward"])).json()
    assert [item["code"] for item in own["items"]] == ["PSGA-RK-0001", "PSGA-RK-0099"]
    others = client.get("/items", params={"department": "psga"}, headers=bearer(tokens["zsj-user"])).json()
    assert [item["code"] for item in others["items"]] == ["PSGA-RK-0001"]
    assert_problem(client.post("/items", json=declaration, headers=bearer(tokens["psga-steward"])), 409, "item_exists")

    declaration["title"] = "测试人口（改）"
    changed = client.put("/items/PSGA-RK-0099", json=declaration, headers=bearer(tokens["psga-steward"]))
    assert changed.status_code == 200 and changed.json()["title"] == "测试人口（改）"

    move = {"to": "in_review"}
    assert_problem(client.post("/items/PSGA-RK-0099/transitions", json=move, headers=bearer(tokens["zsj-steward"])),
                   404, "item_not_found")  # fmt: skip
    moved = client.post("/items/PSGA-RK-0099/transitions", json=move, headers=bearer(tokens["psga-steward"]))
    assert moved.status_code == 200 and moved.json()["status"] == "in_review"
    assert_problem(client.post("/items/PSGA-RK-0099/transitions", json={"to": "retired"},
                               headers=bearer(tokens["psga-steward"])), 409, "illegal_status_change")  # fmt: skip
    refusals = audit_rows(database, "item.register")
    assert {row.principal for row in refusals if row.outcome == "denied"} == {"user:zsj-steward", "user:zsj-user",
                                                                              "anonymous"}  # fmt: skip


def test_machine_tokens_are_shown_once_and_stop_working_when_revoked(
    client: TestClient, tokens: dict[str, str]
) -> None:
    steward = bearer(tokens["zsj-steward"])
    assert_problem(client.post("/departments/psga/tokens", json={"name": "x"}, headers=steward), 403, "forbidden")
    created = client.post("/departments/zsj/tokens", json={"name": "complaints sync", "days": 30}, headers=steward)
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = client.get("/departments/zsj/tokens", headers=steward)
    assert secret not in listed.text and created.json()["prefix"] in listed.text

    assert client.get("/items", headers=bearer(secret)).status_code == 200
    revoked = client.delete(f"/departments/zsj/tokens/{created.json()['id']}", headers=steward)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(client.get("/items", headers=bearer(secret)), 401, "invalid_credentials")
    assert_problem(client.get("/items", headers={"Authorization": "Basic abc"}), 401, "unauthenticated")
    assert_problem(client.get("/items", headers=bearer("not.a.jwt")), 401, "invalid_credentials")


def test_invalid_and_oversized_requests_are_problems(client: TestClient, tokens: dict[str, str]) -> None:
    body = assert_problem(client.post("/auth/login", json={"username": "x"}), 422, "invalid_request")
    assert body["errors"][0]["loc"] == ["body", "password"]
    huge = {"username": "x", "password": "y" * (2 << 20)}
    assert_problem(client.post("/auth/login", json=huge), 413, "request_too_large")
    assert_problem(client.get("/items", params={"page_size": 1000}), 422, "invalid_request")


def test_each_caller_is_rate_limited(client: TestClient, tokens: dict[str, str]) -> None:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    saved, platform.limits = platform.limits, Limits(rates=Rates(per_principal="3/minute"))
    try:
        headers = bearer(tokens["zsj-user"])
        statuses = [client.get("/items", headers=headers).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/items", headers=headers)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/items", headers=bearer(tokens["officer"])).status_code == 200  # a bucket per caller
    finally:
        platform.limits = saved
