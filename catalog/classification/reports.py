"""Classification reports for data officers, as rows for JSON and CSV: fields per level per department, fields
never reviewed, open proposals, and decisions per officer per day.

Each report is one statement (aggregates grouped in the database), so they stay quick at 200,000 fields. Every
report has a fixed list of columns (``COLUMNS``); its rows carry them even when there are none, so that a CSV
of an empty report still has its header. Rows hold only JSON values (text, numbers, lists, None); times are
ISO 8601 text in UTC and days ``YYYY-MM-DD`` (UTC).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.orm import Session

from catalog.access.service import department_id
from catalog.classification.models import ClassificationProposal, FieldReview
from catalog.classification.review import APPROVED, OPEN
from catalog.classification.types import REPORTS
from catalog.delivery.service import FORMULA_STARTS  # a cell a spreadsheet would run gets a leading quote
from catalog.departments.models import Department
from catalog.errors import NotFound
from catalog.items.models import CatalogItem, ItemField

_PROPOSAL_COLUMNS = ("proposal", "department", "item", "field", "level", "semantic_type", "source", "proposed_level",
                     "proposed_semantic_type", "detected_share", "detected_examples", "reason", "created_by",
                     "created_at")  # fmt: skip
COLUMNS: dict[str, tuple[str, ...]] = {
    "levels": ("department", "level", "fields", "approved", "pending"),
    "unreviewed": ("department", "item", "field", "level", "semantic_type", "item_status"),
    "proposals": _PROPOSAL_COLUMNS,
    "decisions": ("officer", "day", "decisions", "changes", "raised"),
}


class UnknownReport(NotFound):
    code = "report_not_found"


class ReportRows(list[dict[str, Any]]):
    """A report's rows, with its columns (in order) even when there are no rows."""

    def __init__(self, columns: Sequence[str], rows: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(rows)
        self.columns = tuple(columns)


def build(session: Session, name: str, department: str | None = None) -> list[dict[str, Any]]:
    """The rows of report ``name`` (one of ``REPORTS``), of one department's items or of all.

    levels      fields per department and level, how many of them approved and pending;
    unreviewed  fields no officer ever decided (no history), by department, item and position;
    proposals   open proposals, oldest first, with the field's current level and semantic type and, for
                detection, the match share and masked examples;
    decisions   decisions per officer per day (UTC): how many, how many changed the level or semantic type,
                how many raised the level.
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise UnknownReport(f"no report {name!r}; the reports are {', '.join(REPORTS)}")
    wanted = department_id(session, department) if department is not None else None
    rows = builder(session, wanted)
    return ReportRows(COLUMNS[name], rows)


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text with a header: ``columns``, else the rows' report columns, else the first row's keys. Lists are
    joined with "; ", None is empty, text that a spreadsheet would take for a formula is quoted with '."""
    header = list(columns or getattr(rows, "columns", None) or (rows[0].keys() if rows else ()))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in header])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        value = "; ".join("" if part is None else str(part) for part in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# --- the reports ---------------------------------------------------------------------------------------------


def _levels(session: Session, department_id: int | None) -> list[dict[str, Any]]:
    approved = func.sum(case((ItemField.review_status == APPROVED, 1), else_=0))
    pending = func.sum(case((ItemField.review_status == APPROVED, 0), else_=1))
    counted = (
        select(CatalogItem.department_id, ItemField.level, func.count().label("fields"),
               approved.label("approved"), pending.label("pending"))
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .group_by(CatalogItem.department_id, ItemField.level)
    )  # fmt: skip
    if department_id is not None:
        counted = counted.where(CatalogItem.department_id == department_id)
    grouped = counted.subquery()
    statement = (
        select(Department.code, grouped.c.level, grouped.c.fields, grouped.c.approved, grouped.c.pending)
        .join(grouped, grouped.c.department_id == Department.id)
        .order_by(Department.code, grouped.c.level)
    )
    return [
        {"department": code, "level": level, "fields": int(fields), "approved": int(approved or 0),
         "pending": int(pending or 0)}
        for code, level, fields, approved, pending in session.execute(statement)
    ]  # fmt: skip


def _unreviewed(session: Session, department_id: int | None) -> list[dict[str, Any]]:
    reviewed = exists().where(FieldReview.item_id == ItemField.item_id, FieldReview.field_name == ItemField.name)
    statement = (
        select(Department.code.label("department"), CatalogItem.code, ItemField.name, ItemField.level,
               ItemField.semantic_type, CatalogItem.status)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .join(Department, Department.id == CatalogItem.department_id)
        .where(~reviewed)
        .order_by(Department.code, CatalogItem.code, ItemField.position)
    )  # fmt: skip
    if department_id is not None:
        statement = statement.where(CatalogItem.department_id == department_id)
    return [
        {"department": department, "item": item, "field": name, "level": level, "semantic_type": semantic_type,
         "item_status": status}
        for department, item, name, level, semantic_type, status in session.execute(statement)
    ]  # fmt: skip


def _proposals(session: Session, department_id: int | None) -> list[dict[str, Any]]:
    proposal = ClassificationProposal
    statement = (
        select(proposal.id, Department.code.label("department"), CatalogItem.code, proposal.field_name,
               ItemField.level, ItemField.semantic_type, proposal.source, proposal.proposed_level,
               proposal.proposed_semantic_type, proposal.evidence, proposal.reason, proposal.created_by,
               proposal.created_at)
        .join(CatalogItem, CatalogItem.id == proposal.item_id)
        .join(Department, Department.id == CatalogItem.department_id)
        .outerjoin(ItemField, and_(ItemField.item_id == proposal.item_id, ItemField.name == proposal.field_name))
        .where(proposal.status == OPEN)
        .order_by(proposal.created_at, proposal.id)
    )  # fmt: skip
    if department_id is not None:
        statement = statement.where(CatalogItem.department_id == department_id)
    rows = []
    for row in session.execute(statement):
        evidence = row.evidence or {}
        share = evidence.get("share")
        rows.append(
            {"proposal": row.id, "department": row.department, "item": row.code, "field": row.field_name,
             "level": row.level, "semantic_type": row.semantic_type, "source": row.source,
             "proposed_level": row.proposed_level, "proposed_semantic_type": row.proposed_semantic_type,
             "detected_share": float(share) if share is not None else None,
             "detected_examples": [str(example) for example in evidence.get("examples") or []],
             "reason": row.reason or None, "created_by": row.created_by, "created_at": _iso(row.created_at)}
        )  # fmt: skip
    return rows


def _decisions(session: Session, department_id: int | None) -> list[dict[str, Any]]:
    review = FieldReview
    day = _utc_day(session, review.decided_at).label("day")
    changed = case(
        ((review.to_level != review.from_level) | (review.to_semantic_type != review.from_semantic_type), 1), else_=0
    )
    raised = case((review.to_level > review.from_level, 1), else_=0)
    statement = (
        select(review.decided_by, day, func.count().label("decisions"), func.sum(changed).label("changes"),
               func.sum(raised).label("raised"))
        .group_by(review.decided_by, day)
        .order_by(day, review.decided_by)
    )  # fmt: skip
    if department_id is not None:
        statement = statement.join(CatalogItem, CatalogItem.id == review.item_id).where(
            CatalogItem.department_id == department_id
        )
    return [
        {"officer": officer, "day": str(day_value), "decisions": int(decisions), "changes": int(changes or 0),
         "raised": int(raised_count or 0)}
        for officer, day_value, decisions, changes, raised_count in session.execute(statement)
    ]  # fmt: skip


_BUILDERS: dict[str, Callable[[Session, int | None], list[dict[str, Any]]]] = {
    "levels": _levels,
    "unreviewed": _unreviewed,
    "proposals": _proposals,
    "decisions": _decisions,
}


# --- helpers -------------------------------------------------------------------------------------------------


def _utc_day(session: Session, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp, as YYYY-MM-DD text."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC timestamps as "YYYY-MM-DD HH:MM:SS.ffffff"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
