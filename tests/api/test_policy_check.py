"""GET /policy/check: the drift report for data officers and platform admins (a 200 whether or not it finds
anything), refused to stewards and users (403, audited) and to the anonymous (401); every check audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from catalog.access import service
from catalog.access.models import CasbinRule
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.api.conftest import PASSWORD, bearer, login, status_of

STRAY = ("p", "user", "audit", "read")
GHOST = ("g", "user:ghost", "steward", "psga")  # a binding whose user was deleted


@pytest.fixture(scope="module")
def admin(database: str, client: TestClient) -> dict[str, str]:
    """A platform admin's authorization header."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        service.create_user(session, "zsj", "policy-admin", "平台管理员", PASSWORD, ["platform_admin"])
    engine.dispose()
    return bearer(login(client, "policy-admin"))


@pytest.fixture
def drift(database: str) -> Iterator[None]:
    """A stray permission and a binding nobody explains, committed; removed afterwards."""
    engine = make_engine(database)
    planted = [STRAY, GHOST]
    with session_scope(engine) as session:
        for ptype, v0, v1, v2 in planted:
            session.add(CasbinRule(ptype=ptype, v0=v0, v1=v1, v2=v2))
    yield
    with session_scope(engine) as session:
        for ptype, v0, v1, v2 in planted:
            session.execute(delete(CasbinRule).where(CasbinRule.ptype == ptype, CasbinRule.v0 == v0,
                                                     CasbinRule.v1 == v1, CasbinRule.v2 == v2))  # fmt: skip
    engine.dispose()


def _last_audit(database: str, action: str) -> AuditEvent:
    engine = make_engine(database)
    with session_scope(engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc()))
        found = event.first()
    engine.dispose()
    assert found is not None, f"no {action} audit event"
    return found


def test_an_officer_gets_a_clean_report(client: TestClient, as_: dict[str, dict[str, str]], database: str) -> None:
    report = status_of(client.get("/policy/check", headers=as_["officer"]), 200)
    assert (report["total"], report["findings"], report["by_kind"]) == (0, [], {}), report
    assert report["rules_checked"] > 40 and report["subscriptions_checked"] == 0
    event = _last_audit(database, "policy.check")
    assert (event.principal, event.outcome, event.detail) == ("user:officer", "done", {"findings": 0, "by_kind": {}})


@pytest.mark.usefixtures("drift")
def test_officers_and_admins_get_the_findings(
    client: TestClient, as_: dict[str, dict[str, str]], admin: dict[str, str], database: str
) -> None:
    for headers in (as_["officer"], admin):
        report = status_of(client.get("/policy/check", headers=headers), 200)
        assert report["total"] == 2 and report["by_kind"] == {"binding_unknown_subject": 1, "rule_not_in_seed": 1}
        found: dict[str, Any] = {finding["kind"]: finding for finding in report["findings"]}
        stray, ghost = found["rule_not_in_seed"], found["binding_unknown_subject"]
        assert (stray["category"], stray["rule"], stray["role"]) == ("policy", list(STRAY), "user")
        assert stray["message"] == "p, user, audit, read: not in policies/policy.csv"
        assert (ghost["subject"], ghost["role"], ghost["department"]) == ("user:ghost", "steward", "psga")
        assert ghost["message"] == "g, user:ghost, steward, psga: no user or machine token user:ghost"
    event = _last_audit(database, "policy.check")
    assert (event.principal, event.department, event.detail["findings"]) == ("user:policy-admin", "zsj", 2)


@pytest.mark.parametrize("who", ["psga-steward", "zsj-user"])
def test_stewards_and_users_are_refused_and_audited(
    client: TestClient, as_: dict[str, dict[str, str]], database: str, who: str
) -> None:
    problem = status_of(client.get("/policy/check", headers=as_[who]), 403)
    assert problem["code"] == "forbidden"
    event = _last_audit(database, "policy.read")
    assert (event.principal, event.outcome) == (f"user:{who}", "denied")


def test_the_anonymous_must_sign_in(client: TestClient) -> None:
    response = client.get("/policy/check")
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"


def test_the_report_and_its_refusals_are_documented(client: TestClient) -> None:
    operation = status_of(client.get("/openapi.json"), 200)["paths"]["/policy/check"]["get"]
    assert {"200", "401", "403", "429"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DriftReport"}
