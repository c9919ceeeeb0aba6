"""`datashare policy check`: run in-process for a named data officer (or platform admin) against the demo on a
fresh database of each backend: exit code 0 when clean, 1 with findings (text and JSON), 2 when the named person
may not check; every check and every refusal audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from catalog.access.models import CasbinRule, UserAccount
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.settings import get_settings


@pytest.fixture
def datashare(datashare: Any, tmp_path: Path) -> Any:
    """`datashare ARGS...` against the demo (catalog and principals) on a fresh database."""
    datashare("demo", "--samples", str(tmp_path / "no-samples"))
    return datashare


def _plant_drift() -> None:
    """A stray permission and a deactivated user whose binding stayed, as if written behind the services' back."""
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        session.add(CasbinRule(ptype="p", v0="user", v1="audit", v2="read"))
        session.execute(update(UserAccount).where(UserAccount.username == "wjj-user").values(active=False))
    engine.dispose()


def _audit(action: str) -> list[tuple[str, str, dict[str, Any]]]:
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(AuditEvent.principal, AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        ).all()
    engine.dispose()
    return [(principal, outcome, dict(detail)) for principal, outcome, detail in rows]


def test_a_clean_demo_exits_0(datashare: Any) -> None:
    result = datashare("policy", "check", "--officer", "officer")
    assert "0 finding(s) in" in result.output and "0 active subscription(s)." in result.output
    report = json.loads(datashare("policy", "check", "--officer", "officer", "--json").output)
    assert (report["total"], report["findings"]) == (0, [])
    assert _audit("policy.check") == [("user:officer", "done", {"findings": 0, "by_kind": {}})] * 2


def test_drift_exits_1_and_names_each_finding(datashare: Any) -> None:
    _plant_drift()
    text = datashare("policy", "check", "--officer", "officer", expect=1).output
    assert "rule_not_in_seed: p, user, audit, read: not in policies/policy.csv\n" in text
    assert "binding_inactive_user: g, user:wjj-user, user, wjj: user wjj-user is deactivated\n" in text
    assert "2 finding(s)" in text and "binding_inactive_user 1, rule_not_in_seed 1." in text

    report = json.loads(datashare("policy", "check", "--officer", "admin", "--json", expect=1).output)
    assert report["total"] == 2
    kinds = {finding["kind"]: finding for finding in report["findings"]}
    assert kinds["rule_not_in_seed"]["rule"] == ["p", "user", "audit", "read"]
    assert (kinds["binding_inactive_user"]["subject"], kinds["binding_inactive_user"]["department"]) == (
        "user:wjj-user", "wjj",
    )  # fmt: skip
    assert [(who, detail["findings"]) for who, _, detail in _audit("policy.check")] == [
        ("user:officer", 2), ("user:admin", 2),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "message"),
    [
        pytest.param("zsj-steward", "zsj-steward may not check the access policy", id="steward"),
        pytest.param("ops", "ops may not check the access policy", id="ops"),
        pytest.param("nobody", "there is no active user nobody", id="unknown"),
    ],
)
def test_someone_who_may_not_check_exits_2(datashare: Any, who: str, message: str) -> None:
    _plant_drift()
    result = datashare("policy", "check", "--officer", who, "--json", expect=2)
    assert message in result.output and "rule_not_in_seed" not in result.output
    code = "policy_checker_not_found" if who == "nobody" else "policy_check_forbidden"
    assert _audit("policy.read") == [(f"user:{who}", "denied", {"reason": code, "on_behalf_of": "*"})]
    assert _audit("policy.check") == []


def test_the_check_acts_for_a_named_person(datashare: Any) -> None:
    assert "--officer" in datashare("policy", "check", expect=2).output
