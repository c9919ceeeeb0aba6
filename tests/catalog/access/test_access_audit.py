"""Creating a user, creating a machine token and revoking it each write their audit row in the transaction that
makes the change, as whoever acts: never a password, a token's secret or a person's display name."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access import service
from catalog.access.demo import SEEDED_BY, seed_demo_principals
from catalog.access.models import MachineToken, UserAccount
from catalog.audit.models import AuditEvent
from tests.catalog.helpers import import_demo

PASSWORD = "correct horse battery staple"
ADMIN = service.Principal("user:admin", "zsj")  # a platform admin of the data bureau
STEWARD = service.Principal("user:zsj-steward", "zsj")


@pytest.fixture
def demo(session: Session) -> Session:
    import_demo(session)
    return session


def audit_rows(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def principal_actions(session: Session) -> list[str]:
    actions = ("user.create", "token.create", "token.revoke")
    return list(
        session.scalars(select(AuditEvent.action).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id))
    )


def details_text(session: Session) -> str:
    return json.dumps([row.detail for row in session.scalars(select(AuditEvent))], ensure_ascii=False)


def test_a_user_created_is_audited_as_its_creator_without_password_or_name(demo: Session) -> None:
    user = service.create_user(demo, "psga", "wang", "王警官", PASSWORD, ["steward", "data_officer"], created_by=ADMIN)

    [row] = audit_rows(demo, "user.create")
    assert (row.principal, row.department, row.outcome, row.item_code) == ("user:admin", "zsj", "done", None)
    assert row.detail == {"username": "wang", "on_behalf_of": "psga", "roles": ["data_officer", "steward"]}
    text = details_text(demo)
    assert PASSWORD not in text and user.password_hash not in text and "王警官" not in text


def test_a_user_created_by_no_one_named_is_audited_as_the_system(demo: Session) -> None:
    service.create_user(demo, "zsj", "li", "李", PASSWORD, ["user"])

    [row] = audit_rows(demo, "user.create")
    assert (row.principal, row.department, row.detail["username"]) == (service.SYSTEM, None, "li")


def test_a_refused_user_writes_no_audit_row(demo: Session) -> None:
    with pytest.raises(service.WeakPassword):
        service.create_user(demo, "zsj", "short", "S", "12345", ["user"], created_by=ADMIN)
    with pytest.raises(service.UnknownDepartment):
        service.create_user(demo, "nosuch", "x", "X", PASSWORD, ["user"], created_by=ADMIN)
    assert audit_rows(demo, "user.create") == []


def test_a_token_created_is_audited_as_its_creator_never_with_its_secret(demo: Session) -> None:
    token, secret = service.create_machine_token(demo, "zsj", "complaints sync", days=30, created_by=STEWARD)

    [row] = audit_rows(demo, "token.create")
    assert (row.principal, row.department, row.outcome) == ("user:zsj-steward", "zsj", "done")
    assert row.detail == {
        "token_id": token.id,
        "name": "complaints sync",
        "on_behalf_of": "zsj",
        "expires_at": token.expires_at.isoformat(),
    }
    assert token.expires_at - token.created_at < timedelta(days=30, seconds=5)
    assert token.created_by == "user:zsj-steward"
    text = details_text(demo)
    assert secret not in text and token.prefix not in text and token.token_hash not in text


def test_a_token_revoked_is_audited_once_as_who_revoked_it(demo: Session) -> None:
    token, _ = service.create_machine_token(demo, "zsj", "complaints sync", days=30, created_by="cli:root")
    with pytest.raises(service.TokenNotFound):
        service.revoke_machine_token(demo, token.id, "psga", ADMIN)  # not that department's token
    assert audit_rows(demo, "token.revoke") == []

    service.revoke_machine_token(demo, token.id, "zsj", ADMIN)
    service.revoke_machine_token(demo, token.id, "zsj", ADMIN)  # already revoked: nothing changes

    [created] = audit_rows(demo, "token.create")
    assert (created.principal, created.department) == ("cli:root", None)
    [row] = audit_rows(demo, "token.revoke")
    assert (row.principal, row.department) == ("user:admin", "zsj")
    assert row.detail == {"token_id": token.id, "name": "complaints sync", "on_behalf_of": "zsj"}
    assert token.revoked_by == "user:admin"


def test_the_audit_rows_roll_back_and_commit_with_the_changes(demo: Session) -> None:
    demo.commit()  # the demo catalog stays; what follows is one transaction of its own

    service.create_user(demo, "zsj", "li", "李", PASSWORD, ["user"], created_by=ADMIN)
    token, _ = service.create_machine_token(demo, "zsj", "sync", days=1, created_by=ADMIN)
    demo.rollback()
    assert [demo.scalar(select(func.count()).select_from(model)) for model in (UserAccount, MachineToken)] == [0, 0]
    assert principal_actions(demo) == []

    service.create_user(demo, "zsj", "li", "李", PASSWORD, ["user"], created_by=ADMIN)
    token, _ = service.create_machine_token(demo, "zsj", "sync", days=1, created_by=ADMIN)
    demo.commit()
    service.revoke_machine_token(demo, token.id, "zsj", ADMIN)
    demo.rollback()
    assert principal_actions(demo) == ["user.create", "token.create"]
    assert demo.get(MachineToken, token.id).revoked_at is None  # type: ignore[union-attr]


def test_the_demo_seeding_audits_each_user_and_token_without_their_secrets(demo: Session, tmp_path: Path) -> None:
    credentials = json.loads(seed_demo_principals(demo, tmp_path).read_text(encoding="utf-8"))

    users, tokens = audit_rows(demo, "user.create"), audit_rows(demo, "token.create")
    assert {row.detail["username"] for row in users} == set(credentials["users"])
    assert {row.detail["on_behalf_of"] for row in tokens} == set(credentials["tokens"])
    assert {(row.principal, row.department) for row in users + tokens} == {(SEEDED_BY, None)}
    text = details_text(demo)
    secrets = [user["password"] for user in credentials["users"].values()] + list(credentials["tokens"].values())
    assert not [secret for secret in secrets if secret in text]
