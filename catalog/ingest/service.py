"""The ingestion path for one export of one item: keep raw, decode, conform, validate, publish or quarantine,
and an operator's release or discard of a quarantined batch.

The same functions serve ``datashare ingest``/``pull`` and the Airflow tasks. They only add and flush; the
edge commits, so a version is published (table, rows, version row, pointer) in one transaction or not at all.
A failure of the export itself is not an exception: it is a quarantined batch, recorded and committed.
Every outcome (published, quarantined, duplicate, released, discarded) adds its audit row to the same
transaction: it commits with the change it records, or not at all. The rows name no values of the export.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import service as audit
from catalog.db import utcnow
from catalog.departments.models import SourceSystem
from catalog.errors import DomainError, InvalidTransition, NotFound
from catalog.ingest import detection, quality
from catalog.ingest.conform import ConformedChunk, conform
from catalog.ingest.decode import decode_export
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import DEFAULT_RETENTION_DAYS, VersionWriter, prune_versions
from catalog.ingest.raw_store import record_raw_export, store_raw_file
from catalog.ingest.tables import RawTable, read_csv, read_json, read_xlsx
from catalog.items import repository as items_repository
from catalog.items.models import CatalogItem
from catalog.items.schemas import BadRowPolicy, FieldDeclaration, QualityPolicy
from catalog.prefetch import prefetched


@dataclass(frozen=True)
class IngestOutcome:
    item: str
    outcome: str  # published | quarantined | duplicate | released | discarded
    batch_id: int
    sha256: str
    version: int | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatchNotFound(NotFound):
    code = "batch_not_found"


class BatchNotQuarantined(InvalidTransition):
    code = "batch_not_quarantined"


def ingest_export(
    session: Session,
    item_code: str,
    data: bytes,
    file_name: str,
    *,
    raw_dir: Path,
    trigger: str,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> IngestOutcome:
    stored = items_repository.get_by_code_or_raise(session, item_code)
    raw = record_raw_export(session, raw_dir, stored.id, item_code, data, file_name)
    earlier = session.scalar(
        select(IngestBatch).where(IngestBatch.raw_export_id == raw.id).order_by(IngestBatch.id.desc()).limit(1)
    )
    if earlier is not None:  # the same export again: a retry or a rerun publishes nothing twice
        store_raw_file(raw, data)
        _audit_duplicate(session, stored, raw, earlier, file_name, trigger)
        outcome = _outcome(item_code, raw, earlier, "duplicate")
        return replace(outcome, reasons=[f"already ingested as batch {earlier.id} ({earlier.outcome})"])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-raw") as background:
        kept = background.submit(store_raw_file, raw, data)  # written and synced while the export is processed
        outcome = _ingest_new_export(session, stored, raw, data, file_name, trigger, retention_days)
        kept.result()  # before the caller commits: a batch never refers to a raw file that is not there
    return outcome


def _ingest_new_export(
    session: Session,
    stored: items_repository.StoredItem,
    raw: RawExport,
    data: bytes,
    file_name: str,
    trigger: str,
    retention_days: int,
) -> IngestOutcome:
    item_code = stored.declaration.code
    started = utcnow()
    fields, policy = stored.declaration.fields, stored.declaration.quality
    floor = quality.minimum_rows(_current_row_count(session, stored.id), policy)
    validator: quality.BatchValidator | None = None
    sampler = detection.FieldSampler(fields)
    try:
        with session.begin_nested():  # anything that fails rolls the staged version back to here
            chunks = conform(_read_table(session, stored.id, data, file_name), fields)  # bad columns fail here
            validator = quality.BatchValidator(fields, floor)
            writer = _stage(session, stored.id, fields, chunks, validator, sampler)
            report = validator.finish()
            dropped = _rows_to_drop(report, policy, validator.rows_read)
            if dropped and validator.rows_read - len(dropped) < floor:
                dropped = None  # what would be left is itself a volume drop
            if dropped is None:
                raise _Quarantine(report)
            writer.delete_rows(dropped)
            version = writer.finish()
    except _Quarantine as quarantine:
        batch = _record(session, stored.id, raw, trigger, started, "quarantined", validator, quarantine.report)
        return _audited(session, stored, file_name, trigger, _outcome(item_code, raw, batch, "quarantined"),
                        failed_checks=_failed_checks(quarantine.report))  # fmt: skip
    except DomainError as error:
        batch = _record(session, stored.id, raw, trigger, started, "quarantined", validator, reasons=[error.message])
        return _audited(session, stored, file_name, trigger, _outcome(item_code, raw, batch, "quarantined"))
    except Exception as error:  # whatever breaks, the batch is recorded (no values: messages may quote cells)
        reason = (
            f"the export could not be processed or published ({type(error).__name__}); the raw export is kept "
            "and the current version is unchanged"
        )
        batch = _record(session, stored.id, raw, trigger, started, "quarantined", validator, reasons=[reason])
        return _audited(session, stored, file_name, trigger, _outcome(item_code, raw, batch, "quarantined"))
    batch = _record(session, stored.id, raw, trigger, started, "published", validator, report, version, dropped)
    detection.propose_from(session, stored.id, sampler, batch.id)
    prune_versions(session, stored.id, retention_days)
    return _audited(session, stored, file_name, trigger, _outcome(item_code, raw, batch, "published", version))


class _Quarantine(Exception):
    def __init__(self, report: quality.QualityReport) -> None:
        self.report = report


def _stage(
    session: Session,
    item_id: int,
    fields: Sequence[FieldDeclaration],
    chunks: Iterator[ConformedChunk],
    validator: quality.BatchValidator | None,
    sampler: detection.FieldSampler | None = None,
) -> VersionWriter:
    """Conform, validate and write the export chunk by chunk into the item's next version table.

    Three things overlap: the next chunk is read and conformed (Arrow, mostly outside the GIL) and the current
    one written (the database parses it) while this thread validates it. Without a validator (an operator's
    release) the rows whose values do not parse are left out.
    """
    writer = VersionWriter(session, item_id, fields)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") as write_pool:
        written: Future[None] | None = None
        for chunk in prefetched(chunks, "ingest-read"):
            if written is not None:
                written.result()  # one chunk in flight: the session's connection is used by one thread at a time
            leave_out = chunk.rejected_rows if validator is None else None
            written = write_pool.submit(writer.write, chunk, leave_out)
            if validator is not None:
                validator.add(chunk)
            if sampler is not None:
                sampler.add(chunk)
        if written is not None:
            written.result()
    return writer


def release_batch(session: Session, batch_id: int, actor: str, reason: str, force: bool = False) -> IngestOutcome:
    """Publish a quarantined batch despite its quality report: an operator's recorded override.

    The export must still decode and conform to the item's fields; rows whose values do not parse are left out.
    A batch older than the current version is refused unless forced, so a release never silently rolls back.
    ``actor`` (who decided) is the principal of its audit row.
    """
    batch, raw, item_code = _quarantined(session, batch_id, reason)
    stored = items_repository.get_by_code_or_raise(session, item_code)
    newer = session.scalar(
        select(ItemVersion.number).where(ItemVersion.item_id == stored.id, ItemVersion.published_at > batch.started_at)
    )
    if newer is not None and not force:
        raise InvalidTransition(
            f"version {newer} of {item_code} was published after batch {batch_id}; releasing it would replace newer "
            "data (use --force if that is intended)"
        )
    fields = stored.declaration.fields
    table = _read_table(session, stored.id, Path(raw.stored_path).read_bytes(), raw.file_name)
    version = _stage(session, stored.id, fields, conform(table, fields), validator=None).finish()
    _decide(batch, "released", actor, reason)
    batch.version_id, batch.rows_accepted = version.id, version.row_count
    batch.rows_rejected = batch.rows_read - version.row_count
    session.flush()
    outcome = _outcome(item_code, raw, batch, "released", version)
    _audit_decision(session, actor, reason, outcome, "quarantine.release", forced=force)
    return outcome


def discard_batch(session: Session, batch_id: int, actor: str, reason: str) -> IngestOutcome:
    """Close a quarantined batch without publishing it; the raw export and the report stay."""
    batch, raw, item_code = _quarantined(session, batch_id, reason)
    _decide(batch, "discarded", actor, reason)
    session.flush()
    outcome = _outcome(item_code, raw, batch, "discarded")
    _audit_decision(session, actor, reason, outcome, "quarantine.discard")
    return outcome


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
    """The record of each ingestion run: outcome, trigger, timings, row counts, version, reasons."""
    statement = (
        select(IngestBatch, CatalogItem.code, ItemVersion.number)
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .outerjoin(ItemVersion, IngestBatch.version_id == ItemVersion.id)
        .order_by(IngestBatch.id.desc() if newest_first else IngestBatch.id)
        .limit(limit)
    )
    if item_code is not None:
        statement = statement.where(CatalogItem.code == item_code)
    if outcome is not None:
        statement = statement.where(IngestBatch.outcome == outcome)
    return [_run_record(batch, code, version) for batch, code, version in session.execute(statement)]


def _run_record(batch: IngestBatch, item_code: str, version: int | None) -> dict[str, Any]:
    return {
        "batch": batch.id,
        "item": item_code,
        "outcome": batch.outcome,
        "trigger": batch.trigger,
        "started_at": batch.started_at.isoformat(),
        "seconds": round((batch.finished_at - batch.started_at).total_seconds(), 3),
        "rows_read": batch.rows_read,
        "rows_accepted": batch.rows_accepted,
        "rows_rejected": batch.rows_rejected,
        "version": version,
        "quality_success": batch.report.get("success") if batch.report else None,
        "reasons": batch.reasons,
        "decided_by": batch.decided_by,
    }


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


def _rows_to_drop(report: quality.QualityReport, policy: QualityPolicy, rows_read: int) -> set[int] | None:
    """The rows to leave out of a publication (none for a clean batch), or None to quarantine the batch."""
    if report.success:
        return set()
    droppable = policy.bad_rows is BadRowPolicy.DROP and report.only_row_failures
    if droppable and len(report.failing_rows) <= policy.max_bad_share * rows_read:
        return set(report.failing_rows)
    return None


def _read_table(session: Session, item_id: int, data: bytes, file_name: str) -> RawTable:
    source = session.scalar(
        select(SourceSystem)
        .join(CatalogItem, CatalogItem.source_system_id == SourceSystem.id)
        .where(CatalogItem.id == item_id)
    )
    if source is not None and source.access in ("sql", "http"):
        return read_json(decode_export(data, "utf-8").utf8)  # query results and API pages are kept as JSON lines
    export_format = source.format if source else _format_from_name(file_name)
    if export_format == "xlsx":
        return read_xlsx(data)
    utf8 = decode_export(data, source.encoding if source else "auto").utf8
    return read_json(utf8) if export_format == "json" else read_csv(utf8)


def _format_from_name(file_name: str) -> str:
    suffix = Path(file_name).suffix.lower().lstrip(".")
    return {"jsonl": "json", "ndjson": "json", "xlsx": "xlsx", "json": "json"}.get(suffix, "csv")


def _current_row_count(session: Session, item_id: int) -> int | None:
    statement = (
        select(ItemVersion.row_count)
        .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
        .where(CatalogItem.id == item_id)
    )
    return session.scalar(statement)


def _record(
    session: Session,
    item_id: int,
    raw: RawExport,
    trigger: str,
    started: datetime,
    outcome: str,
    validator: quality.BatchValidator | None = None,
    report: quality.QualityReport | None = None,
    version: ItemVersion | None = None,
    dropped: set[int] | None = None,
    reasons: list[str] | None = None,
) -> IngestBatch:
    rows_read = validator.rows_read if validator is not None else 0
    accepted = version.row_count if version is not None else 0
    batch = IngestBatch(
        item_id=item_id,
        raw_export_id=raw.id,
        outcome=outcome,
        trigger=trigger,
        started_at=started,
        finished_at=utcnow(),
        rows_read=rows_read,
        rows_accepted=accepted,
        rows_rejected=rows_read - accepted,
        version_id=version.id if version is not None else None,
        reasons=reasons if reasons is not None else (report.reasons() if report is not None else []),
        report={**report.as_dict(), "dropped_rows": sorted(dropped or ())} if report is not None else {},
    )
    session.add(batch)
    session.flush()
    return batch


def _outcome(
    item_code: str, raw: RawExport, batch: IngestBatch, outcome: str, version: ItemVersion | None = None
) -> IngestOutcome:
    return IngestOutcome(
        item=item_code,
        outcome=outcome,
        batch_id=batch.id,
        sha256=raw.sha256,
        version=version.number if version is not None else None,
        rows_read=batch.rows_read,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        reasons=list(batch.reasons),
    )


# --- the audit rows: counts, digests and declared names only, never a value of the export -----------------------


def _audited(
    session: Session,
    stored: items_repository.StoredItem,
    file_name: str,
    trigger: str,
    outcome: IngestOutcome,
    **detail: Any,
) -> IngestOutcome:
    """Audit a new batch's outcome (``ingest.published`` or ``ingest.quarantined``) as the pipeline's trigger, for
    the item's department. Reasons are counted, not copied: a quality report's texts may quote cells."""
    published = outcome.outcome == "published"
    audit.record(
        session, trigger, stored.declaration.department, f"ingest.{outcome.outcome}", "done",
        item_code=outcome.item, version=outcome.version, rows=outcome.rows_accepted if published else None,
        batch_id=outcome.batch_id, sha256=outcome.sha256, file_name=file_name, rows_read=outcome.rows_read,
        rows_rejected=outcome.rows_rejected, reasons=len(outcome.reasons), **detail,
    )  # fmt: skip
    return outcome


def _audit_duplicate(
    session: Session,
    stored: items_repository.StoredItem,
    raw: RawExport,
    earlier: IngestBatch,
    file_name: str,
    trigger: str,
) -> None:
    audit.record(
        session, trigger, stored.declaration.department, "ingest.duplicate", "done", item_code=stored.declaration.code,
        sha256=raw.sha256, file_name=file_name, duplicate_of=earlier.id, duplicate_of_outcome=earlier.outcome,
    )  # fmt: skip


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


def _failed_checks(report: quality.QualityReport) -> list[str]:
    """The failed rules by declared field name (``*``: the whole batch), without their observed values."""
    return [f"{check.field}: {check.rule}" for check in report.checks if not check.success]
