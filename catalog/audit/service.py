"""The audit trail: one append-only row per data access and per decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent

_INSERT = insert(AuditEvent)


def record(
    session: Session,
    principal: str,
    department: str | None,
    action: str,
    outcome: str,
    *,
    item_code: str | None = None,
    version: int | None = None,
    subscription_id: int | None = None,
    fields_returned: Sequence[str] = (),
    fields_masked: Sequence[str] = (),
    rows: int | None = None,
    **detail: Any,
) -> None:
    """Add an audit event to the caller's transaction: it commits (or not) with what it records."""
    values = dict(
        principal=principal,
        department=department,
        action=action,
        outcome=outcome,
        item_code=item_code,
        version=version,
        subscription_id=subscription_id,
        fields_returned=list(fields_returned),
        fields_masked=list(fields_masked),
        rows=rows,
        detail=detail,
    )
    session.connection().execute(_INSERT, values)  # a plain insert: nothing reads the row back


def events(
    session: Session,
    *,
    item_code: str | None = None,
    department: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if item_code is not None:
        statement = statement.where(AuditEvent.item_code == item_code)
    if department is not None:
        statement = statement.where(AuditEvent.department == department)
    if since is not None:
        statement = statement.where(AuditEvent.at >= since)
    return list(session.scalars(statement))
