"""Sign-ins to the web console. The cookie holds a random secret; the database keeps its SHA-256, whose row names the
person and ends at sign-out, after ``idle`` without a request, or ``MAX_HOURS`` after the sign-in, whichever comes
first. A session of a person since deactivated is refused at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access.models import ConsoleSession
from catalog.access.service import Principal, user_is_active
from catalog.db import utcnow

MAX_HOURS = 10  # a working day: a new sign-in each morning
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often, not on every page


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def begin(session: Session, principal: Principal, idle: timedelta) -> str:
    """A new session for a signed-in person; its secret (the cookie's value), which is stored only as a digest."""
    assert principal.department is not None
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ConsoleSession(
            token_hash=_digest(secret), subject=principal.subject, department=principal.department,
            created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=MAX_HOURS),
        )
    )  # fmt: skip
    return secret


def principal_of(session: Session, secret: str, idle: timedelta) -> Principal | None:
    """The person a live session belongs to (noting that it was used), None for an unknown, ended or idle one."""
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _digest(secret)))
    now = utcnow()
    if row is None or row.revoked_at is not None or now >= row.expires_at or now >= row.last_seen_at + idle:
        return None
    if not user_is_active(session, row.subject):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Principal(row.subject, row.department)


def end(session: Session, secret: str) -> None:
    """Sign-out: the session can no longer be used, even with a copy of the cookie."""
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _digest(secret)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
