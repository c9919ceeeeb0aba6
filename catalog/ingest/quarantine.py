"""An operator's decision on a quarantined batch: release it (publish it despite its quality report, a recorded
override) or discard it. Both need a reason, lock the batch row, and audit the decision as the operator in the
same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import service as audit
from catalog.db import utcnow
from catalog.errors import Conflict, InvalidTransition, NotFound
from catalog.ingest.changes import conform_export, is_delta
from catalog.ingest.exports import discarded_after
from catalog.ingest.generations import DeltaWriter, VersionBusy
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import VersionWriter
from catalog.ingest.raw_store import raw_export_file
from catalog.ingest.reading import opened_table
from catalog.ingest.service import IngestOutcome, outcome_of, require_published, stage
from catalog.items import repository as items_repository
from catalog.items.models import CatalogItem
from catalog.notifications import notices
from catalog.ops import feeds


class BatchNotFound(NotFound):
    code = "batch_not_found"


class BatchNotQuarantined(InvalidTransition):
    code = "batch_not_quarantined"


class ReleaseMustWait(Conflict):
    """The current version is being read and could not be locked in time to apply the released delta: nothing
    changed, the batch stays quarantined; the release can be tried again."""

    code = "version_busy"


def release_batch(session: Session, batch_id: int, actor: str, reason: str, force: bool = False) -> IngestOutcome:
    """Publish a quarantined batch despite its quality report: an operator's recorded override.

    The export must still decode and conform to the item's fields; rows whose values do not parse are left out.
    A batch older than the current version is refused unless forced, so a release never silently rolls back (an
    incremental export, forced, is applied to the current version). Of an incremental export's rows of one key, the
    last in the export's order is applied (a change log's meaning: an insert then a deletion deletes the key), the
    earlier ones are counted as ``superseded``.
    ``actor`` (who decided) is the principal of its audit row.
    """
    batch, raw, item_code = _quarantined(session, batch_id, reason)
    stored = items_repository.get_by_code_or_raise(session, item_code)
    require_published(stored)
    newer = session.scalar(
        select(ItemVersion.number).where(ItemVersion.item_id == stored.id, ItemVersion.published_at > batch.started_at)
    )
    if newer is not None and not force:
        raise InvalidTransition(
            f"version {newer} of {item_code} was published after batch {batch_id}; releasing it would replace newer "
            "data (use --force if that is intended)"
        )
    fields, load = stored.declaration.fields, stored.declaration.load
    with discarded_after(raw_export_file(raw)) as export, opened_table(session, stored.id, export) as table:
        chunks = conform_export(table, fields, load)
        writer = stage(session, stored.id, fields, chunks, None, delta=is_delta(table, load))
    version = _finished(writer, batch_id)
    _decide(batch, "released", actor, reason)
    batch.version_id, batch.rows_accepted = version.id, writer.row_count
    batch.rows_rejected, batch.rows_refused_with_batch = batch.rows_read - writer.row_count, 0
    if isinstance(writer, DeltaWriter) and writer.changes is not None:
        batch.report = {**batch.report, "load": {**writer.changes.as_dict(), "superseded": writer.superseded}}
    session.flush()
    outcome = outcome_of(item_code, raw, batch, "released", version)
    applied = {"load": outcome.changes} if outcome.changes else {}
    _audit_decision(session, actor, reason, outcome, "quarantine.release", forced=force, **applied)
    notices.version_published(session, item_code, version.number)
    feeds.record(session, item_code, feeds.RELEASED)
    return outcome


def _finished(writer: VersionWriter, batch_id: int) -> ItemVersion:
    try:
        return writer.finish()
    except VersionBusy as busy:
        raise ReleaseMustWait(
            f"batch {batch_id} was not released: the item's current version is being read (a download or a delivery) "
            "and could not be locked in time to apply the incremental export; nothing changed, the batch stays "
            "quarantined: try the release again in a moment"
        ) from busy


def discard_batch(session: Session, batch_id: int, actor: str, reason: str) -> IngestOutcome:
    """Close a quarantined batch without publishing it; the raw export and the report stay."""
    batch, raw, item_code = _quarantined(session, batch_id, reason)
    _decide(batch, "discarded", actor, reason)
    session.flush()
    outcome = outcome_of(item_code, raw, batch, "discarded")
    _audit_decision(session, actor, reason, outcome, "quarantine.discard")
    return outcome


def _quarantined(session: Session, batch_id: int, reason: str) -> tuple[IngestBatch, RawExport, str]:
    if not reason.strip():
        raise InvalidTransition("a release or discard needs a reason")
    row = session.execute(
        select(IngestBatch, RawExport, CatalogItem.code)
        .join(RawExport, IngestBatch.raw_export_id == RawExport.id)
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .where(IngestBatch.id == batch_id)
        .with_for_update(of=IngestBatch)
    ).one_or_none()
    if row is None:
        raise BatchNotFound(f"ingest batch {batch_id} does not exist")
    batch, raw, item_code = row
    if batch.outcome != "quarantined":
        raise BatchNotQuarantined(f"batch {batch_id} is {batch.outcome}, not quarantined")
    return batch, raw, item_code


def _decide(batch: IngestBatch, outcome: str, actor: str, reason: str) -> None:
    batch.outcome, batch.decided_by, batch.decided_at, batch.decision_reason = outcome, actor, utcnow(), reason


def _audit_decision(
    session: Session, actor: str, reason: str, outcome: IngestOutcome, action: str, **detail: Any
) -> None:
    """An operator's release or discard, as that operator (whose department the actor string does not say)."""
    audit.record(
        session, actor, None, action, "done", item_code=outcome.item, version=outcome.version,
        rows=outcome.rows_accepted if outcome.version is not None else None, batch_id=outcome.batch_id,
        reason=reason, sha256=outcome.sha256, rows_read=outcome.rows_read, rows_rejected=outcome.rows_rejected,
        **detail,
    )  # fmt: skip
