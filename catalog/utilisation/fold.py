"""Folding the audit trail into the usage rollups, incrementally and safely under concurrency.

A use is an audit event ``data.read`` or ``data.verify`` with outcome ``allowed``, or ``data.deliver`` with outcome
``done``, naming an item. Each fold adds the uses with ids in (``folded_to``, safe] to ``usage_day`` and
``usage_month`` and moves ``folded_to`` to the safe id, in the caller's transaction; the figures then read the rollups
plus the few uses above ``folded_to`` (``uses_after``), so they are always current.

The fold locks the watermark row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's transactions here take the write
lock at BEGIN): two folds run one after the other and never count an event twice. On PostgreSQL a transaction holding
id 10 may commit after one holding id 11 (``catalog.audit.chain`` explains why): the safe id is the sequence's last
value once every transaction running when it was read has ended. A fold never waits for them: it remembers the id
and those transactions (``pending_*``) and a later fold reaches it; until then those uses are read live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Date, Select, and_, case, cast, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.audit.chain import AUDIT_ID_SEQUENCE, RUNNING_TRANSACTIONS  # as the seal reads them
from catalog.audit.models import AuditEvent
from catalog.db import utcnow
from catalog.utilisation.models import UsageDay, UsageFold, UsageMonth

MEASURES = ("reads", "rows_read", "verifications", "deliveries", "rows_delivered")
READ, VERIFY, DELIVER = "data.read", "data.verify", "data.deliver"


@dataclass(frozen=True)
class Folded:
    folded_to: int  # every use at or below it is in the rollups
    events: int  # how many audit events this fold read (uses and others)


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def uses_condition() -> ColumnElement[bool]:
    return and_(
        AuditEvent.item_code.is_not(None),
        or_(
            and_(AuditEvent.action.in_((READ, VERIFY)), AuditEvent.outcome == "allowed"),
            and_(AuditEvent.action == DELIVER, AuditEvent.outcome == "done"),
        ),
    )


def bucket(session: Session, unit: str) -> ColumnElement[Any]:
    """An event's UTC day or month (its first day), whatever the session's time zone."""
    if is_postgresql(session):
        moment = func.timezone("UTC", AuditEvent.at)
        return cast(moment if unit == "day" else func.date_trunc("month", moment), Date)
    return func.date(AuditEvent.at) if unit == "day" else func.date(AuditEvent.at, "start of month")


def uses_after(session: Session, unit: str, after_id: int, up_to: int | None = None) -> Select[Any]:
    """The uses with ids in (after_id, up_to], summed per bucket, item and consumer department."""
    when = bucket(session, unit)
    department = func.coalesce(AuditEvent.department, "")

    def total(action: str, value: Any = 1) -> ColumnElement[Any]:
        return func.sum(case((AuditEvent.action == action, value), else_=0))

    rows = func.coalesce(AuditEvent.rows, 0)
    wanted = [AuditEvent.id > after_id, uses_condition()]
    if up_to is not None:
        wanted.append(AuditEvent.id <= up_to)
    return (
        select(when.label(unit), AuditEvent.item_code.label("item_code"), department.label("department"),
               total(READ).label("reads"), total(READ, rows).label("rows_read"), total(VERIFY).label("verifications"),
               total(DELIVER).label("deliveries"), total(DELIVER, rows).label("rows_delivered"))
        .where(*wanted).group_by(when, AuditEvent.item_code, department)
    )  # fmt: skip


def fold(session: Session) -> Folded:
    """Fold every use that is safe to fold; in the caller's transaction, which keeps the watermark row locked."""
    state = _locked_state(session)
    target = _safe_id(session, state)
    events = 0
    if target > state.folded_to:
        events = _count(session, state.folded_to, target)
        for model, unit in ((UsageDay, "day"), (UsageMonth, "month")):
            _add(session, model, uses_after(session, unit, state.folded_to, target), unit)
        state.folded_to, state.folded_at = target, utcnow()
    session.flush()
    return Folded(state.folded_to, events)


def _locked_state(session: Session) -> UsageFold:
    statement = select(UsageFold).where(UsageFold.id == 1).with_for_update()
    state = session.scalars(statement).one_or_none()
    if state is None:  # a schema made without the migration's row
        session.add(UsageFold(id=1, folded_to=0, pending_holders=[]))
        session.flush()
        state = session.scalars(statement).one()
    return state


def _safe_id(session: Session, state: UsageFold) -> int:
    """The highest id no running transaction can still add an event at or below (never below ``folded_to``)."""
    if not is_postgresql(session):  # this transaction holds the write lock: every event is committed and final
        return max(state.folded_to, int(session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0))
    last, cached = session.execute(AUDIT_ID_SEQUENCE).one()
    if cached != 1:  # ids cached by a session may be drawn later below ``last``: nothing is safe to fold
        return state.folded_to
    session.execute(text("SELECT pg_stat_clear_snapshot()"))  # pg_stat_activity as it is now
    running = set(session.scalars(RUNNING_TRANSACTIONS))  # read after the sequence: all holding ids <= last
    safe = state.folded_to
    if state.pending_to is not None and not running & set(state.pending_holders):
        safe = max(safe, state.pending_to)
        state.pending_to, state.pending_holders = None, []
    if last is None or last <= safe:
        return safe
    if not running:
        state.pending_to, state.pending_holders = None, []
        return int(last)
    if state.pending_to is None:  # a newer candidate waits until the older one is reached
        state.pending_to, state.pending_holders = int(last), sorted(running)
    return safe


def _count(session: Session, after_id: int, up_to: int) -> int:
    statement = select(func.count()).where(AuditEvent.id > after_id, AuditEvent.id <= up_to)
    return int(session.scalar(statement) or 0)


def _add(session: Session, model: type[UsageDay] | type[UsageMonth], uses: Select[Any], unit: str) -> None:
    """Insert the uses, adding them to the rows already there (an upsert on PostgreSQL and SQLite alike)."""
    dialect = postgresql if is_postgresql(session) else sqlite
    columns = [unit, "item_code", "department", *MEASURES]
    statement = dialect.insert(model).from_select(columns, uses)
    table = model.__table__
    statement = statement.on_conflict_do_update(
        index_elements=[unit, "item_code", "department"],
        set_={name: table.c[name] + statement.excluded[name] for name in MEASURES},
    )
    session.execute(statement)


def window_start(today: date, days: int) -> date:
    """The first day of the ``days`` UTC days that end with ``today``."""
    return date.fromordinal(today.toordinal() - days + 1)
