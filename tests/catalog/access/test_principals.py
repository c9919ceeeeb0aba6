"""Users and machine tokens: hashed secrets, short-lived access tokens, expiry, revocation."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import service
from catalog.access.models import MachineToken, UserAccount
from catalog.access.policy import roles_of
from catalog.db import utcnow
from catalog.delivery.access_cache import AccessCache
from tests.catalog.helpers import import_demo

SECRET = "test-secret-test-secret-test-secret"
PASSWORD = "correct horse battery staple"


def principal_of(session: Session, credential: str) -> service.Principal:
    """Who a credential belongs to, as the API asks (a new process's memory each time)."""
    return AccessCache(refresh_seconds=0, pseudonym_key=b"key").principal(session, credential, SECRET)


@pytest.fixture
def demo(session: Session) -> Session:
    import_demo(session)
    return session


def test_a_user_signs_in_with_the_right_password_only(demo: Session) -> None:
    user = service.create_user(demo, "psga", "wang", "王警官", PASSWORD, ["steward"])
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert roles_of(demo, "user:wang") == [("steward", "psga")]

    assert service.authenticate(demo, "wang", PASSWORD) == service.Principal("user:wang", "psga")
    for username, password in (("wang", "wrong password!!"), ("nobody", PASSWORD)):
        with pytest.raises(service.InvalidCredentials, match="unknown user or wrong password"):
            service.authenticate(demo, username, password)


def test_global_roles_hold_everywhere_and_short_passwords_are_refused(demo: Session) -> None:
    service.create_user(demo, "zsj", "li", "李", PASSWORD, ["data_officer", "user"])
    assert roles_of(demo, "user:li") == [("data_officer", "*"), ("user", "zsj")]
    with pytest.raises(service.WeakPassword, match="at least 12"):
        service.create_user(demo, "zsj", "short", "S", "12345", ["user"])
    with pytest.raises(service.UserExists):
        service.create_user(demo, "zsj", "li", "李", PASSWORD, ["user"])
    with pytest.raises(service.UnknownDepartment):
        service.create_user(demo, "nosuch", "x", "X", PASSWORD, ["user"])


def test_access_tokens_expire_and_die_with_their_user(demo: Session) -> None:
    principal = service.authenticate(demo, service.create_user(demo, "zsj", "zhao", "赵", PASSWORD, ["user"]).username,
                                     PASSWORD)  # fmt: skip
    token, lifetime = service.issue_access_token(principal, SECRET)
    assert lifetime == service.ACCESS_TOKEN_MINUTES * 60
    assert principal_of(demo, token) == principal

    expired, _ = service.issue_access_token(principal, SECRET, minutes=-1)
    forged = jwt.encode({"sub": "user:zhao", "dep": "psga", "exp": utcnow() + timedelta(minutes=5)}, "other-key-x" * 4)
    for bad in (expired, forged, "not a token"):
        with pytest.raises(service.InvalidCredentials):
            principal_of(demo, bad)

    demo.scalars(select(UserAccount).where(UserAccount.username == "zhao")).one().active = False
    with pytest.raises(service.InvalidCredentials, match="no longer active"):
        principal_of(demo, token)


def test_machine_tokens_are_shown_once_stored_hashed_and_revocable(demo: Session) -> None:
    token, secret = service.create_machine_token(demo, "zsj", "complaints sync", days=30, created_by="user:li")
    assert service.is_machine_token(secret) and len(secret) > 40
    stored = demo.scalars(select(MachineToken)).one()
    assert secret not in (stored.token_hash, stored.prefix) and secret.startswith(stored.prefix)
    assert roles_of(demo, f"token:{token.id}") == [("system", "zsj")]
    assert principal_of(demo, secret) == service.Principal(f"token:{token.id}", "zsj")

    with pytest.raises(service.TokenNotFound):
        service.revoke_machine_token(demo, token.id, "psga", "user:someone")  # not that department's token
    service.revoke_machine_token(demo, token.id, "zsj", "user:li")
    assert roles_of(demo, f"token:{token.id}") == []
    with pytest.raises(service.InvalidCredentials, match="revoked or has expired"):
        principal_of(demo, secret)
    with pytest.raises(service.InvalidCredentials, match="unknown token"):
        principal_of(demo, "dst_" + "x" * 43)


def test_an_expired_machine_token_is_refused(demo: Session) -> None:
    token, secret = service.create_machine_token(demo, "zsj", "old", days=1, created_by="user:li")
    token.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(service.InvalidCredentials, match="revoked or has expired"):
        principal_of(demo, secret)
    with pytest.raises(service.DomainError, match="1 to 366 days"):
        service.create_machine_token(demo, "zsj", "forever", days=10_000, created_by="user:li")
