"""Truth tables over the real policies/ files: every role against every object and action, in its own
department, in another department, and everywhere; and policy changes reaching every enforcer at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.access.models import CasbinRule
from catalog.access.policy import PolicyEnforcer, grant_role, revoke_roles, seed_permissions, sync_seed_permissions
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.catalog.helpers import import_demo

SUBJECTS = {
    "user:steward-psga": ("steward", "psga"),
    "user:user-zsj": ("user", "zsj"),
    "token:1": ("system", "zsj"),
    "user:officer": ("data_officer", "*"),
    "user:ops": ("ops", "*"),
    "user:admin": ("platform_admin", "*"),
}
ACTIONS = [
    ("catalog", "read"), ("item", "register"), ("item", "update"), ("item", "transition"),
    ("subscription", "request"), ("subscription", "decide"), ("subscription", "decide_officer"),
    ("subscription", "revoke"), ("subscription", "read"), ("data", "read"), ("token", "manage"),
    ("audit", "read"), ("runs", "read"), ("runs", "operate"), ("users", "manage"), ("notification", "read"),
    ("classification", "read"), ("classification", "propose"), ("classification", "decide"), ("policy", "read"),
    ("notification", "operate"), ("notification_channel", "manage"), ("utilisation", "read"),
    ("delivery_target", "manage"), ("deliveries", "read"), ("deliveries", "operate"),
]  # fmt: skip
# What each role may do (in its own department for department roles, anywhere for global ones).
ALLOWED = {
    "steward": {
        ("catalog", "read"), ("item", "register"), ("item", "update"), ("item", "transition"),
        ("subscription", "request"), ("subscription", "decide"), ("subscription", "revoke"),
        ("subscription", "read"), ("data", "read"), ("token", "manage"), ("notification", "read"),
        ("classification", "read"), ("classification", "propose"), ("runs", "read"),
        ("notification_channel", "manage"), ("utilisation", "read"), ("delivery_target", "manage"),
        ("deliveries", "read"),
    },
    "user": {("catalog", "read"), ("subscription", "request"), ("subscription", "read"),
             ("subscription", "revoke"), ("data", "read"), ("notification", "read"), ("utilisation", "read"),
             ("deliveries", "read")},
    "system": {("catalog", "read"), ("data", "read")},
    "data_officer": {("catalog", "read"), ("subscription", "decide_officer"), ("subscription", "revoke"),
                     ("subscription", "read"), ("audit", "read"), ("classification", "read"),
                     ("classification", "decide"), ("policy", "read"), ("notification", "read"),
                     ("utilisation", "read")},
    "ops": {("catalog", "read"), ("runs", "read"), ("runs", "operate"), ("notification", "read"),
            ("notification", "operate"), ("utilisation", "read"), ("deliveries", "read"), ("deliveries", "operate")},
    "platform_admin": {("catalog", "read"), ("audit", "read"), ("users", "manage"), ("token", "manage"),
                       ("policy", "read"), ("notification_channel", "manage"), ("utilisation", "read")},
}  # fmt: skip


@pytest.fixture(scope="module")
def policy_engine(backend: str, database_factory: Any) -> Iterator[Engine]:
    engine = make_engine(database_factory(backend))
    with session_scope(engine) as session:
        import_demo(session)
        for subject, (role, department) in SUBJECTS.items():
            grant_role(session, subject, role, department)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def enforcer(policy_engine: Engine) -> PolicyEnforcer:
    enforcer = PolicyEnforcer()
    with Session(policy_engine) as session:
        enforcer.refresh(session)
    return enforcer


def test_the_seed_file_names_only_known_roles() -> None:
    assert {role for role, _, _ in seed_permissions()} == set(ALLOWED)


def test_the_tables_here_are_the_seed_file_exactly() -> None:
    """A permission added to the seed file without a row here (or the other way round) fails."""
    assert set(seed_permissions()) == {(role, obj, action) for role, allowed in ALLOWED.items()
                                       for obj, action in allowed}  # fmt: skip
    assert {(obj, action) for _, obj, action in seed_permissions()} <= set(ACTIONS)


@pytest.mark.parametrize("subject", list(SUBJECTS))
@pytest.mark.parametrize("department", ["psga", "zsj", "wjj"])
def test_truth_table(enforcer: PolicyEnforcer, subject: str, department: str) -> None:
    role, home = SUBJECTS[subject]
    for obj, action in ACTIONS:
        expected = (obj, action) in ALLOWED[role] and home in ("*", department)
        assert enforcer.allows(subject, department, obj, action) is expected, (subject, department, obj, action)


def test_anonymous_and_unknown_subjects_may_do_nothing(enforcer: PolicyEnforcer) -> None:
    for subject in ("anonymous", "user:nobody", "token:999"):
        for obj, action in ACTIONS:
            assert not enforcer.allows(subject, "psga", obj, action)


def test_a_grant_and_a_revocation_reach_every_enforcer_at_once(policy_engine: Engine) -> None:
    first, second = PolicyEnforcer(), PolicyEnforcer()  # as in two API processes
    for enforcer in (first, second):
        with Session(policy_engine) as session:
            enforcer.refresh(session)
        assert not enforcer.allows("user:new-steward", "wjj", "item", "update")

    with session_scope(policy_engine) as session:
        grant_role(session, "user:new-steward", "steward", "wjj")
    for enforcer in (first, second):
        with Session(policy_engine) as session:
            enforcer.refresh(session)
        assert enforcer.allows("user:new-steward", "wjj", "item", "update")
        assert not enforcer.allows("user:new-steward", "psga", "item", "update")

    with session_scope(policy_engine) as session:
        revoke_roles(session, "user:new-steward")
    for enforcer in (first, second):
        with Session(policy_engine) as session:
            enforcer.refresh(session)
        assert not enforcer.allows("user:new-steward", "wjj", "item", "update")


def test_an_unknown_role_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown role 'superuser'"):
        grant_role(session, "user:x", "superuser", "psga")


def test_a_change_of_the_stored_permissions_by_the_seed_sync_is_audited(session: Session) -> None:
    synced = select(AuditEvent).where(AuditEvent.action == "policy.sync").order_by(AuditEvent.id)
    first = session.scalars(synced).all()  # the migration's sync, which loaded the seed
    assert len(first) == 1 and ["steward", "item", "register"] in first[0].detail["added"]
    assert not sync_seed_permissions(session)  # nothing to change, nothing recorded
    session.add(CasbinRule(ptype="p", v0="user", v1="audit", v2="read"))  # a rule slipped in behind the platform
    session.flush()

    assert sync_seed_permissions(session)

    event = session.scalars(synced).all()[-1]
    assert (event.principal, event.detail["removed"], event.detail["added"]) == (
        "system:policy-seed", [["user", "audit", "read"]], [])  # fmt: skip
