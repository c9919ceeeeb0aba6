"""Machine tokens created and revoked through the API are audited once each, in the request's transaction, as
the caller (their principal and their own department), never with the token's secret."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.access import service
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.api.conftest import PASSWORD, bearer, login, status_of

ADMIN = "token-admin"  # a platform admin of the data bureau, who manages every department's tokens


def audit_rows(database: str, action: str) -> list[AuditEvent]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        session.expunge_all()
    engine.dispose()
    return rows


def rows_of_token(database: str, action: str, token_id: int) -> list[AuditEvent]:
    return [row for row in audit_rows(database, action) if row.detail.get("token_id") == token_id]


@pytest.fixture(scope="module")
def admin(database: str, client: TestClient) -> dict[str, str]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        service.create_user(session, "zsj", ADMIN, ADMIN, PASSWORD, ["platform_admin"])
    engine.dispose()
    return bearer(login(client, ADMIN))


def test_a_stewards_token_is_audited_once_as_the_steward(
    client: TestClient, database: str, as_: dict[str, dict[str, str]]
) -> None:
    created = status_of(client.post("/departments/zsj/tokens", json={"name": "complaints sync", "days": 30},
                                    headers=as_["zsj-steward"]), 201)  # fmt: skip

    [row] = rows_of_token(database, "token.create", created["id"])
    assert (row.principal, row.department, row.outcome) == ("user:zsj-steward", "zsj", "done")
    assert row.detail == {
        "token_id": created["id"],
        "name": "complaints sync",
        "on_behalf_of": "zsj",
        "expires_at": created["expires_at"].replace("Z", "+00:00"),
    }
    assert created["token"] not in json.dumps(row.detail) and created["prefix"] not in json.dumps(row.detail)


def test_an_admin_revoking_another_departments_token_is_audited_with_the_admins_department(
    client: TestClient, database: str, as_: dict[str, dict[str, str]], admin: dict[str, str]
) -> None:
    created = status_of(client.post("/departments/psga/tokens", json={"name": "population feed"}, headers=admin), 201)
    [row] = rows_of_token(database, "token.create", created["id"])
    assert (row.principal, row.department, row.detail["on_behalf_of"]) == (f"user:{ADMIN}", "zsj", "psga")

    status_of(client.delete(f"/departments/psga/tokens/{created['id']}", headers=admin), 200)
    status_of(client.delete(f"/departments/psga/tokens/{created['id']}", headers=admin), 200)  # nothing changes

    [revoked] = rows_of_token(database, "token.revoke", created["id"])
    assert (revoked.principal, revoked.department) == (f"user:{ADMIN}", "zsj")
    assert revoked.detail == {"token_id": created["id"], "name": "population feed", "on_behalf_of": "psga"}


def test_a_refused_token_request_audits_the_refusal_only(
    client: TestClient, database: str, as_: dict[str, dict[str, str]]
) -> None:
    before = len(audit_rows(database, "token.create"))
    response = client.post("/departments/psga/tokens", json={"name": "x"}, headers=as_["zsj-steward"])
    assert response.status_code == 403
    assert len(audit_rows(database, "token.create")) == before
    refused = audit_rows(database, "token.manage")[-1]
    assert (refused.principal, refused.outcome, refused.detail) == (
        "user:zsj-steward",
        "denied",
        {"on_behalf_of": "psga"},
    )

    missing = client.delete("/departments/zsj/tokens/999999", headers=as_["zsj-steward"])
    assert missing.status_code == 404
    assert rows_of_token(database, "token.revoke", 999999) == []
