"""Run records: each ingestion run's batch row, from the moment its work starts.

A run's record is committed as ``running`` (with the host and process id running it) before any work; it ends
``published`` or ``quarantined`` with the work, or ``failed`` (an unexpected error, recorded in a transaction of
its own). A process killed meanwhile leaves it ``running``: it is marked ``interrupted`` once that process is
known dead (on its own host, the process id is gone) or has run longer than it may (any host). Failed and
interrupted runs settle nothing: the next run ingests the same export for real.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, defer

from catalog.access.policy import EVERYWHERE
from catalog.audit.schemas import AuditQuery
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.reasons import reason
from catalog.items.models import CatalogItem


class RunOutcome(StrEnum):
    RUNNING = "running"  # its record is committed before the work
    PUBLISHED = "published"
    QUARANTINED = "quarantined"  # waits for an operator's release or discard
    RELEASED = "released"
    DISCARDED = "discarded"
    FAILED = "failed"  # an unexpected error; the next run retries the export
    INTERRUPTED = "interrupted"  # its process died while running


RUNNING, FAILED, INTERRUPTED = RunOutcome.RUNNING.value, RunOutcome.FAILED.value, RunOutcome.INTERRUPTED.value
# An export with one of these outcomes is not ingested again.
SETTLED = tuple(outcome.value for outcome in (RunOutcome.PUBLISHED, RunOutcome.QUARANTINED, RunOutcome.RELEASED,
                                              RunOutcome.DISCARDED))  # fmt: skip
DEFAULT_STALE_AFTER = timedelta(hours=6)
READ, OPERATE = ("runs", "read"), ("runs", "operate")  # (object, action) of the Casbin policy, in the item's department
MAX_PAGE = 500
MAX_ID = 2_147_483_647  # batch ids are 32-bit integers


def this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def settle_dead_runs(
    session: Session,
    item_id: int | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    batch_id: int | None = None,
) -> list[int]:
    """Mark running batches (of one item, or one batch) interrupted whose process is known dead; returns their ids."""
    statement = select(IngestBatch).where(IngestBatch.outcome == RUNNING).order_by(IngestBatch.id)
    if item_id is not None:
        statement = statement.where(IngestBatch.item_id == item_id)
    if batch_id is not None:
        statement = statement.where(IngestBatch.id == batch_id)
    host, _ = this_process()
    dead = [batch for batch in session.scalars(statement) if _is_dead(batch, host, stale_after)]
    for batch in dead:
        batch.outcome = INTERRUPTED
        batch.reasons = [reason("died")]  # where it ran is in the record's host and pid, for ops
    session.flush()
    return [batch.id for batch in dead]


def live_run(session: Session, item_id: int) -> IngestBatch | None:
    """A run of the item still going (after ``settle_dead_runs``)."""
    return session.scalar(
        select(IngestBatch).where(IngestBatch.item_id == item_id, IngestBatch.outcome == RUNNING).limit(1)
    )


def _is_dead(batch: IngestBatch, host: str, stale_after: timedelta) -> bool:
    if batch.host == host and batch.pid is not None and not _alive(batch.pid):
        return True
    return utcnow() - batch.started_at > stale_after


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunFilter(BaseModel):
    """Which run records: each filter optional, all given must match. ``outcomes``: any of them; ``since`` and
    ``until`` bound when the run started (at or after, before); a time without a zone is UTC."""

    model_config = ConfigDict(frozen=True)

    item: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=32)
    outcomes: tuple[RunOutcome, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("since", "until")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        return AuditQuery._as_utc(value)  # the audit trail's reading of a time filter


@dataclass(frozen=True)
class Page:
    """Where a listing starts and how much of it: newest first below ``cursor`` (a batch id), or oldest first above
    it. Batch ids only grow, so runs recorded while someone pages on come before the first page, never in between."""

    cursor: int | None = None
    limit: int | None = None  # None: all of them
    newest_first: bool = True


@dataclass(frozen=True)
class RunPage:
    runs: list[dict[str, Any]]
    next_cursor: int | None  # where the next page starts (its ``Page.cursor``); None on the last page


def run_page(session: Session, wanted: RunFilter, page: Page, *, visible_to: str) -> RunPage:
    """A page of run records matching ``wanted``, of the items of the department ``visible_to`` (``EVERYWHERE``:
    of every department). One index range on the batch id (or on the item's batches) per page, whatever the total."""
    statement = _records(wanted, visible_to).order_by(IngestBatch.id.desc() if page.newest_first else IngestBatch.id)
    if page.cursor is not None:
        statement = statement.where(IngestBatch.id < page.cursor if page.newest_first else IngestBatch.id > page.cursor)
    if page.limit is not None:
        statement = statement.limit(page.limit + 1)
    records = [_run_record(*row, visible_to=visible_to) for row in session.execute(statement)]
    if page.limit is None or len(records) <= page.limit:
        return RunPage(records, None)
    return RunPage(records[: page.limit], records[page.limit - 1]["batch"])


def run_records(
    session: Session,
    item_code: str | None = None,
    *,
    outcome: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """The record of each ingestion run: outcome, export file, where it ran, timings, row counts, version, reasons."""
    wanted = RunFilter(item=item_code, outcomes=() if outcome is None else (RunOutcome(outcome),))
    return run_page(session, wanted, Page(limit=limit, newest_first=newest_first), visible_to=EVERYWHERE).runs


def newest_runs(session: Session, item_codes: Collection[str], *, visible_to: str) -> dict[str, dict[str, Any]]:
    """Each item's newest run record, by item code (items without a run left out), of the items of the department
    ``visible_to``: one statement, the newest batch of each item read from its (item, id) index."""
    if not item_codes:
        return {}
    newest = (
        select(func.max(IngestBatch.id))
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .where(CatalogItem.code.in_(set(item_codes)))
        .group_by(IngestBatch.item_id)
    )
    statement = _records(RunFilter(), visible_to).where(IngestBatch.id.in_(newest))
    records = (_run_record(*row, visible_to=visible_to) for row in session.execute(statement))
    return {record["item"]: record for record in records}


def quarantined_batches(session: Session, item_code: str | None = None) -> list[dict[str, Any]]:
    """Batches waiting for an operator's release or discard, oldest first."""
    return run_records(session, item_code, outcome=RunOutcome.QUARANTINED, newest_first=False)


def run_record(session: Session, batch_id: int, *, visible_to: str) -> dict[str, Any]:
    """One batch's record; a batch of another department's item is not found, as if it did not exist."""
    found = session.execute(_records(RunFilter(), visible_to).where(IngestBatch.id == batch_id)).one_or_none()
    if found is None:
        _not_found(batch_id)
    return _run_record(*found, visible_to=visible_to)


def quality_report(session: Session, batch_id: int, *, visible_to: str) -> dict[str, Any]:
    """A batch's record and its whole quality report (each check's counts, first failing rows, masked examples)."""
    record = run_record(session, batch_id, visible_to=visible_to)
    report = session.scalar(select(IngestBatch.report).where(IngestBatch.id == batch_id))
    return record | {"report": report or {}}


def failing_rows_file(session: Session, batch_id: int, *, visible_to: str) -> tuple[str | None, str | None]:
    """Where a batch's file of every failing row is, and its SHA-256 (``failing_rows.read_failing_rows`` reads it)."""
    run_record(session, batch_id, visible_to=visible_to)
    kept = session.execute(
        select(IngestBatch.failing_rows_path, IngestBatch.failing_rows_sha256).where(IngestBatch.id == batch_id)
    ).one()
    return kept.failing_rows_path, kept.failing_rows_sha256


def _not_found(batch_id: int) -> NoReturn:
    from catalog.ingest.quarantine import BatchNotFound  # quarantine imports the ingestion path, which imports this

    raise BatchNotFound(f"ingest batch {batch_id} does not exist")


def _records(wanted: RunFilter, visible_to: str) -> Select[Any]:
    # The report is left out: only its verdict is read, in the database (a report may be large).
    success = IngestBatch.report["success"].as_boolean()
    statement = (
        select(IngestBatch, CatalogItem.code, Department.code, RawExport.file_name, ItemVersion.number, success)
        .options(defer(IngestBatch.report))
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .join(Department, CatalogItem.department_id == Department.id)
        .join(RawExport, IngestBatch.raw_export_id == RawExport.id)
        .outerjoin(ItemVersion, IngestBatch.version_id == ItemVersion.id)
    )
    return statement.where(*_conditions(wanted, visible_to))


def _conditions(wanted: RunFilter, visible_to: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for department in dict.fromkeys((visible_to, wanted.department)):
        if department not in (EVERYWHERE, None):
            conditions.append(Department.code == department)
    if wanted.item is not None:
        conditions.append(CatalogItem.code == wanted.item)
    if wanted.outcomes:
        conditions.append(IngestBatch.outcome.in_([outcome.value for outcome in wanted.outcomes]))
    if wanted.since is not None:
        conditions.append(IngestBatch.started_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(IngestBatch.started_at < wanted.until)
    return conditions


def _run_record(
    batch: IngestBatch, item_code: str, department: str, file_name: str, version: int | None, success: bool | None,
    *, visible_to: str,
) -> dict[str, Any]:  # fmt: skip
    finished = batch.finished_at
    return _as_seen_by(
        visible_to,
        {
            "batch": batch.id,
            "item": item_code,
            "department": department,
            "outcome": batch.outcome,
            "file_name": file_name,
            "trigger": batch.trigger,
            "host": batch.host,
            "pid": batch.pid,
            "started_at": batch.started_at.isoformat(),
            "finished_at": finished.isoformat() if finished is not None else None,
            "seconds": round((finished - batch.started_at).total_seconds(), 3) if finished is not None else None,
            "rows_read": batch.rows_read,
            "rows_accepted": batch.rows_accepted,
            "rows_rejected": batch.rows_rejected,
            "rows_failed_rules": batch.rows_failed_rules,
            "rows_refused_with_batch": batch.rows_refused_with_batch,
            "failing_rows_kept": batch.failing_rows_path is not None,
            "version": version,
            "quality_success": success,
            "reasons": batch.reasons,
            "decided_by": batch.decided_by,
        },
    )


def _as_seen_by(visible_to: str, record: dict[str, Any]) -> dict[str, Any]:
    """A record as its reader may see it: where it ran (host, process id) and the operator's login in a ``cli:USER``
    trigger are for ops, who read every department's runs; a department's readers get ``cli`` and no host or pid."""
    if visible_to == EVERYWHERE:
        return record
    trigger = str(record["trigger"])
    return record | {"host": None, "pid": None, "trigger": "cli" if trigger.startswith("cli:") else trigger}
