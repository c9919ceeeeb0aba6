"""The audit trail: one append-only row per data access and per decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import CTE, ColumnElement, Connection, FromClause, String, bindparam, cast, insert, select
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent
from catalog.db import utcnow

_INSERT = insert(AuditEvent)
_TABLE = AuditEvent.__table__
_BOUND = ("principal", "department", "action", "outcome", "item_code", "version", "subscription_id")
_AS_JSON = ("fields_returned", "fields_masked", "detail")


def record(session: Session, principal: str, department: str | None, action: str, outcome: str, **fields: Any) -> None:
    """Add an audit event (``event``'s fields) to the caller's transaction: it commits (or not) with what it records."""
    write(session.connection(), event(principal, department, action, outcome, **fields))


def write(connection: Connection, values: dict[str, Any] | list[dict[str, Any]]) -> None:
    """One event (``event``'s values), or many at once."""
    if values:
        connection.execute(_INSERT, values)  # a plain insert: nothing reads the row back


def event(
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
) -> dict[str, Any]:
    """An audit event's column values."""
    return dict(
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


def insert_alongside(rows: ColumnElement[int], source: FromClause) -> CTE:
    """The insert of one audit event as a CTE of a read whose ``source`` gives the rows it returned: the read and
    its audit row are then one statement, atomic (PostgreSQL runs such a CTE whether or not anything reads it).
    Its values are bound at execution by ``alongside_values``."""
    values: list[ColumnElement[Any]] = [bindparam(f"audit_{name}", type_=_TABLE.c[name].type) for name in _BOUND]
    values += [cast(bindparam(f"audit_{name}", type_=String), _TABLE.c[name].type) for name in _AS_JSON]
    values += [bindparam("audit_at", type_=_TABLE.c.at.type), rows]
    inserted = select(*values).select_from(source)
    return insert(AuditEvent).from_select([*_BOUND, *_AS_JSON, "at", "rows"], inserted).cte("logged")


def alongside_values(values: dict[str, Any]) -> dict[str, Any]:
    """``event`` values as ``insert_alongside`` binds them (its rows come from the read)."""
    bound = {f"audit_{name}": values[name] for name in _BOUND}
    bound |= {f"audit_{name}": json.dumps(values[name], ensure_ascii=False) for name in _AS_JSON}
    return bound | {"audit_at": utcnow()}
