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
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.items.models import CatalogItem

RUNNING, FAILED, INTERRUPTED = "running", "failed", "interrupted"
SETTLED = ("published", "quarantined", "released", "discarded")  # an export with one of these is not ingested again
DEFAULT_STALE_AFTER = timedelta(hours=6)


def this_process() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def settle_dead_runs(
    session: Session, item_id: int | None = None, stale_after: timedelta = DEFAULT_STALE_AFTER
) -> list[int]:
    """Mark running batches interrupted whose process is known dead; returns their ids."""
    statement = select(IngestBatch).where(IngestBatch.outcome == RUNNING).order_by(IngestBatch.id)
    if item_id is not None:
        statement = statement.where(IngestBatch.item_id == item_id)
    host, _ = this_process()
    dead = [batch for batch in session.scalars(statement) if _is_dead(batch, host, stale_after)]
    for batch in dead:
        batch.outcome = INTERRUPTED
        batch.reasons = [
            f"the run on {batch.host or 'an unknown host'} (pid {batch.pid}) ended before it finished; the raw export "
            "is kept, the current version is unchanged, and the next run ingests the export again"
        ]
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


def quarantined_batches(session: Session, item_code: str | None = None) -> list[dict[str, Any]]:
    """Batches waiting for an operator's release or discard, oldest first."""
    return run_records(session, item_code, outcome="quarantined", newest_first=False)


def run_records(
    session: Session,
    item_code: str | None = None,
    *,
    outcome: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """The record of each ingestion run: outcome, export file, where it ran, timings, row counts, version, reasons."""
    statement = (
        select(IngestBatch, CatalogItem.code, RawExport.file_name, ItemVersion.number)
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .join(RawExport, IngestBatch.raw_export_id == RawExport.id)
        .outerjoin(ItemVersion, IngestBatch.version_id == ItemVersion.id)
        .order_by(IngestBatch.id.desc() if newest_first else IngestBatch.id)
        .limit(limit)
    )
    if item_code is not None:
        statement = statement.where(CatalogItem.code == item_code)
    if outcome is not None:
        statement = statement.where(IngestBatch.outcome == outcome)
    return [_run_record(*row) for row in session.execute(statement)]


def _run_record(batch: IngestBatch, item_code: str, file_name: str, version: int | None) -> dict[str, Any]:
    finished = batch.finished_at
    return {
        "batch": batch.id,
        "item": item_code,
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
        "quality_success": batch.report.get("success") if batch.report else None,
        "reasons": batch.reasons,
        "decided_by": batch.decided_by,
    }
