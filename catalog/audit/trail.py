"""Reading the audit trail: filtered, paged newest first without end (keyset on the id), and itself audited."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.service import Principal, acting_user
from catalog.audit.errors import ReaderNotFound, ReadForbidden
from catalog.audit.models import AuditEvent
from catalog.audit.schemas import AuditEventRead, AuditPage, AuditQuery
from catalog.audit.service import record
from catalog.errors import Forbidden, NotFound

PERMISSION = ("audit", "read")  # (object, action) the Casbin policy must allow, everywhere ("*"), to read the trail
READ = "audit.read"


def page(session: Session, query: AuditQuery, reader: Principal) -> AuditPage:
    """A page of the trail, newest first, for ``reader`` (whom the edge has let read it); the read itself is
    audited (``audit.read`` with the filters) in the caller's transaction, after the page is read."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(query.limit + 1)
    for condition in _conditions(query):
        statement = statement.where(condition)
    found = list(session.scalars(statement))
    events = [AuditEventRead.model_validate(event) for event in found[: query.limit]]
    next_before = events[-1].id if len(found) > query.limit else None
    record(session, reader.subject, reader.department, READ, "done", rows=len(events), filters=query.filters(),
           before=query.before, limit=query.limit, next_before=next_before)  # fmt: skip
    return AuditPage(events=events, next_before=next_before)


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for column, value in ((AuditEvent.action, query.action), (AuditEvent.principal, query.principal),
                          (AuditEvent.department, query.department), (AuditEvent.item_code, query.item)):  # fmt: skip
        if value is not None:
            conditions.append(column == value)
    if query.since is not None:
        conditions.append(AuditEvent.at >= query.since)
    if query.until is not None:
        conditions.append(AuditEvent.at < query.until)
    if query.before is not None:
        conditions.append(AuditEvent.id < query.before)
    return conditions


def reader(session: Session, username: str) -> Principal:
    """The principal of an active user whom the Casbin policy lets read the trail (``PERMISSION`` everywhere)."""
    try:
        return acting_user(session, username, policy.EVERYWHERE, *PERMISSION)
    except NotFound:
        raise ReaderNotFound(f"there is no active user {username}") from None
    except Forbidden:
        raise ReadForbidden(
            f"{username} may not read the audit trail (data officers and platform admins may)"
        ) from None
