"""Principals: department users (argon2id passwords, short-lived signed access tokens) and department systems
(machine tokens: random, shown once, stored as SHA-256, expiring, revocable).

Creating a user, creating a token and revoking one each add their audit row (``user.create``, ``token.create``,
``token.revoke``) to the caller's transaction, as whoever acts; never a password, a secret or a display name.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.changes import PRINCIPAL, note_change
from catalog.access.models import MachineToken, UserAccount
from catalog.audit import service as audit
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import Conflict, DomainError, Forbidden, NotFound

if TYPE_CHECKING:
    from pwdlib import PasswordHash

ACCESS_TOKEN_MINUTES = 30
TOKEN_PREFIX = "dst_"  # machine tokens start with it, so a leaked one is easy to recognise in logs and scanners
MAX_TOKEN_DAYS = 366
MIN_PASSWORD_LENGTH = 12
ALGORITHM = "HS256"


# Hashing and tokens load with their first use: ingestion and the command line import this module for Principal.
@functools.cache
def _passwords() -> PasswordHash:
    from pwdlib import PasswordHash

    return PasswordHash.recommended()  # argon2id


@functools.cache
def _unknown_user_hash() -> str:
    return _passwords().hash("no such user: the same work as a wrong password")


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class WeakPassword(DomainError):
    code = "weak_password"


class UnknownDepartment(NotFound):
    code = "department_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class UserExists(Conflict):
    code = "user_exists"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user or a department system, and their department (None: anonymous)."""

    subject: str  # user:<username>, token:<id>, or anonymous
    department: str | None

    @property
    def anonymous(self) -> bool:
        return self.department is None


ANONYMOUS = Principal("anonymous", None)
Actor = Principal | str  # who acts: a principal, or a name without a department (command line, demo seeding)
SYSTEM = "system"  # the actor of a user created by no one named


def _as_principal(actor: Actor) -> Principal:
    return actor if isinstance(actor, Principal) else Principal(actor, None)


def create_user(
    session: Session,
    department: str,
    username: str,
    display_name: str,
    password: str,
    roles: list[str],
    *,
    created_by: Actor = SYSTEM,
) -> UserAccount:
    if session.scalar(select(UserAccount.id).where(UserAccount.username == username)) is not None:
        raise UserExists(f"user {username} exists")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    user = UserAccount(
        department_id=department_id(session, department),
        username=username,
        display_name=display_name,
        password_hash=_passwords().hash(password),
    )
    session.add(user)
    session.flush()
    for role in roles:
        policy.grant_role(session, f"user:{username}", role, department)
    who = _as_principal(created_by)
    audit.record(session, who.subject, who.department, "user.create", "done",
                 username=username, on_behalf_of=department, roles=sorted(roles))  # fmt: skip
    return user


def authenticate(session: Session, username: str, password: str) -> Principal:
    """The user's principal if the password is right; the same error (and about the same time) otherwise. A stored
    hash made with other parameters than today's is replaced in the caller's transaction."""
    row = session.execute(
        select(UserAccount, Department.code)
        .join(Department, UserAccount.department_id == Department.id)
        .where(UserAccount.username == username)
    ).one_or_none()
    if row is None:
        _passwords().verify(password, _unknown_user_hash())
        raise InvalidCredentials("unknown user or wrong password")
    user, department = row
    valid, upgraded = _passwords().verify_and_update(password, user.password_hash)
    if not valid or not user.active:
        raise InvalidCredentials("unknown user or wrong password")
    if upgraded is not None:
        user.password_hash = upgraded
    return Principal(f"user:{user.username}", department)


def issue_access_token(principal: Principal, secret: str, minutes: int = ACCESS_TOKEN_MINUTES) -> tuple[str, int]:
    """A signed, short-lived access token for a signed-in user, and its lifetime in seconds."""
    import jwt

    now = utcnow()
    claims = {
        "sub": principal.subject,
        "dep": principal.department,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), minutes * 60


def decode_access_token(token: str, secret: str) -> Principal:
    """The principal an access token was issued to, if its signature and lifetime hold (no database read)."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise InvalidCredentials("the access token is invalid or has expired") from None
    return Principal(str(claims["sub"]), claims.get("dep"))


def user_is_active(session: Session, subject: str) -> bool:
    username = subject.removeprefix("user:")
    return bool(session.scalar(select(UserAccount.active).where(UserAccount.username == username)))


def create_machine_token(
    session: Session, department: str, name: str, days: int, created_by: Actor
) -> tuple[MachineToken, str]:
    """A new token for a department's system, and its secret (shown once: only its hash is kept)."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise DomainError(f"a token lives 1 to {MAX_TOKEN_DAYS} days")
    who = _as_principal(created_by)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = MachineToken(
        department_id=department_id(session, department),
        name=name,
        token_hash=token_digest(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        created_by=who.subject,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    policy.grant_role(session, f"token:{token.id}", "system", department)
    _audit_token(session, who, "token.create", token, department, expires_at=token.expires_at.isoformat())
    return token, secret


def machine_token_holder(session: Session, digest: str) -> tuple[Principal, datetime]:
    """The principal of an unrevoked token with this digest, and when the token expires."""
    row = session.execute(
        select(MachineToken, Department.code)
        .join(Department, MachineToken.department_id == Department.id)
        .where(MachineToken.token_hash == digest)
    ).one_or_none()
    if row is None:
        raise InvalidCredentials("unknown token")
    token, department = row
    if token.revoked_at is not None:
        raise InvalidCredentials("the token has been revoked or has expired")
    return Principal(f"token:{token.id}", department), token.expires_at


def revoke_machine_token(session: Session, token_id: int, department: str, revoked_by: Actor) -> MachineToken:
    """Revoke a department's token (audited when it was not revoked yet: a second revocation changes nothing)."""
    who = _as_principal(revoked_by)
    token = session.scalar(
        select(MachineToken)
        .join(Department, MachineToken.department_id == Department.id)
        .where(MachineToken.id == token_id, Department.code == department)
    )
    if token is None:
        raise TokenNotFound(f"token {token_id} does not exist in department {department}")
    if token.revoked_at is None:
        token.revoked_at, token.revoked_by = utcnow(), who.subject
        policy.revoke_roles(session, f"token:{token.id}")
        note_change(session, PRINCIPAL, f"token:{token.id}")
        _audit_token(session, who, "token.revoke", token, department)
    session.flush()
    return token


def _audit_token(
    session: Session, who: Principal, action: str, token: MachineToken, department: str, **detail: Any
) -> None:
    """A token's audit row: its id, name and department, never its secret (nor the prefix shown of it)."""
    audit.record(session, who.subject, who.department, action, "done",
                 token_id=token.id, name=token.name, on_behalf_of=department, **detail)  # fmt: skip


def is_machine_token(credential: str) -> bool:
    return credential.startswith(TOKEN_PREFIX)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def department_id(session: Session, code: str) -> int:
    """The id of the department with this code (UnknownDepartment, a 404, if there is none)."""
    department_id = session.scalar(select(Department.id).where(Department.code == code))
    if department_id is None:
        raise UnknownDepartment(f"department {code} does not exist")
    return department_id


def acting_user_at_home(session: Session, username: str, obj: str, action: str) -> Principal:
    """``acting_user`` for the user's own department (what a department's person does for it)."""
    home = session.scalar(
        select(Department.code).join(UserAccount, UserAccount.department_id == Department.id)
        .where(UserAccount.username == username)
    )  # fmt: skip
    if home is None:
        raise NotFound(f"there is no active user {username}")
    return acting_user(session, username, home, obj, action)


def acting_user(session: Session, username: str, department: str, obj: str, action: str) -> Principal:
    """The principal of an active user account whom the Casbin policy lets do ``action`` on ``obj`` for
    ``department``, as the API's guard decides it: the command line acts for a named person, never for the shell's
    user."""
    row = session.execute(
        select(UserAccount.active, Department.code)
        .join(Department, UserAccount.department_id == Department.id)
        .where(UserAccount.username == username)
    ).one_or_none()
    if row is None or not row.active:
        raise NotFound(f"there is no active user {username}")
    subject = f"user:{username}"
    enforcer = policy.PolicyEnforcer()
    enforcer.refresh(session)
    if not enforcer.allows(subject, department, obj, action):
        where = "" if department == policy.EVERYWHERE else f" for department {department}"
        raise Forbidden(f"{username} may not {action} {obj}{where}")
    return Principal(subject, row.code)
