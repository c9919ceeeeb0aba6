"""The ingestion path for one export of one item: keep raw, decode, conform, validate, publish or quarantine
(an operator's release or discard of a quarantined batch: catalog/ingest/quarantine.py).

The edges (``datashare ingest``/``pull``, the Airflow tasks) call ``run_ingest``: the run's record (raw export row,
batch ``running``) commits first in a short transaction of its own, the raw file is written after it, and the work
runs in a second transaction, so a version is published (table, rows, version row, pointer) all or nothing.
``ingest_export`` runs the same steps in the caller's transaction (tests, benchmarks).

Only a problem with the export itself (it does not decode, is not a table, does not match the declared fields,
fails its quality rules) quarantines the batch: recorded and committed, an outcome rather than an exception.
Anything else (the database, the disk, a bug) is an error: logged with its traceback, the run recorded as
``failed`` in a fresh transaction, and re-raised so the task fails and is retried; a failed run settles nothing,
the next run ingests the same export. Every outcome adds its audit row to the transaction that records it.
The rows name no values of the export.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.audit import service as audit
from catalog.db import session_scope, utcnow
from catalog.errors import Conflict, InvalidTransition
from catalog.ingest import changes, detection, quality, runs
from catalog.ingest.conform import ConformedChunk
from catalog.ingest.errors import DeltaNotApplicable, ExportNotDecodable, ExportNotReadable, SchemaDrift
from catalog.ingest.exports import ExportFile, discarded_after, spooled_bytes
from catalog.ingest.failing_rows import FailingRowsFile, StoredFailingRows, failing_rows_path
from catalog.ingest.generations import Changes, DeltaWriter
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import DEFAULT_RETENTION_DAYS, VersionWriter, prune_versions
from catalog.ingest.raw_store import record_raw_export, store_raw_file
from catalog.ingest.reading import DecodedOtherwise, opened_table
from catalog.ingest.reasons import reason
from catalog.ingest.runs import quarantined_batches as quarantined_batches
from catalog.ingest.runs import run_records as run_records
from catalog.items import repository as items_repository
from catalog.items.models import CatalogItem
from catalog.items.schemas import BadRowPolicy, FieldDeclaration, ItemStatus, QualityPolicy
from catalog.notifications import notices
from catalog.ops import feeds
from catalog.prefetch import prefetched

logger = logsafe.logger(__name__)
Export = bytes | ExportFile  # what the edges hand over: bytes (an upload, a test) or a file
# What quarantines a batch besides its rules.
DATA_PROBLEMS = (ExportNotDecodable, ExportNotReadable, SchemaDrift, DeltaNotApplicable)
WRITES_QUEUED = 4  # conformed chunks (about 36,000 rows each) waiting for the database at most


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
    duplicate_of_outcome: str | None = None  # a duplicate's earlier batch: published, quarantined, released ...
    changes: dict[str, Any] | None = None  # an incremental export's: the keys inserted, updated, deleted ...

    @property
    def awaits_operator(self) -> bool:
        """The export sits in quarantine (now, or since an earlier run) until an operator releases or discards it."""
        return "quarantined" in (self.outcome, self.duplicate_of_outcome)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def changes_said(changes: dict[str, Any]) -> str:
    """An incremental publication's counts, for a person."""
    return (f"{changes['inserted']} inserted, {changes['updated']} updated, {changes['deleted']} deleted, "
            f"{changes['carried_over']} carried over from version {changes['based_on']}")  # fmt: skip


class ItemNotPublished(InvalidTransition):
    code = "item_not_published"


class IngestInProgress(Conflict):
    code = "ingest_in_progress"


@dataclass(frozen=True)
class StartedRun:
    """A run whose record is written: what its work (possibly in another transaction) needs to find it."""

    batch_id: int
    raw_export_id: int
    item_code: str
    department: str
    sha256: str
    file_name: str
    trigger: str


def run_ingest(
    engine: Engine,
    item_code: str,
    data: Export,
    file_name: str,
    *,
    raw_dir: Path | str,
    reports_dir: Path,
    trigger: str,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    stale_after: timedelta = runs.DEFAULT_STALE_AFTER,
) -> IngestOutcome:
    """The ingestion path as the edges run it: the run's record committed first, then the work in a transaction
    of its own; an unexpected error is logged, recorded as a failed run, and re-raised."""
    with as_export_file(data, file_name) as export:
        return _run(engine, item_code, export, raw_dir, reports_dir, trigger, retention_days, stale_after)


def _run(
    engine: Engine,
    item_code: str,
    export: ExportFile,
    raw_dir: Path | str,
    reports_dir: Path,
    trigger: str,
    retention_days: int,
    stale_after: timedelta,
) -> IngestOutcome:
    with session_scope(engine) as session:
        started = start_run(session, item_code, export, raw_dir=raw_dir, trigger=trigger, stale_after=stale_after)
    if isinstance(started, IngestOutcome):
        return started
    try:
        with session_scope(engine) as session:
            return process_run(session, started, export, reports_dir=reports_dir, retention_days=retention_days)
    except ItemNotPublished as refusal:  # retired meanwhile: a refusal, not an error to retry
        _record_end(engine, started, runs.FAILED, refusal.message, reports_dir)
        raise
    except Exception as error:
        logsafe.log_failure(logger, error, "ingesting %s as batch %d failed; it is recorded as failed", item_code,
                            started.batch_id)  # fmt: skip
        _record_end(engine, started, runs.FAILED, reason("unexpected_error", error=type(error).__name__),
                    reports_dir)  # fmt: skip
        raise
    except BaseException:  # killed or stopped (SIGTERM, Ctrl-C): the record says so at once
        _record_end(engine, started, runs.INTERRUPTED, reason("stopped"), reports_dir)
        raise


def ingest_export(
    session: Session,
    item_code: str,
    data: Export,
    file_name: str,
    *,
    raw_dir: Path,
    trigger: str,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    reports_dir: Path | None = None,
) -> IngestOutcome:
    """The whole ingestion path in the caller's transaction (the failing rows go to ``reports_dir``, by default
    ``reports`` beside ``raw_dir``). Any error other than a problem with the export propagates."""
    reports = reports_dir if reports_dir is not None else raw_dir.parent / "reports"
    with as_export_file(data, file_name) as export:
        started = start_run(session, item_code, export, raw_dir=raw_dir, trigger=trigger)
        if isinstance(started, IngestOutcome):
            return started
        return process_run(session, started, export, reports_dir=reports, retention_days=retention_days)


@contextmanager
def as_export_file(data: Export, file_name: str) -> Iterator[ExportFile]:
    """The export as a file named as sent: bytes (an upload, a test) are spooled to a temporary file, removed when
    the block ends, as is a spooled copy handed over."""
    export = spooled_bytes(data, file_name) if isinstance(data, bytes) else replace(data, name=file_name)
    with discarded_after(export):
        yield export


def start_run(
    session: Session,
    item_code: str,
    export: ExportFile,
    *,
    raw_dir: Path | str,
    trigger: str,
    stale_after: timedelta = runs.DEFAULT_STALE_AFTER,
) -> StartedRun | IngestOutcome:
    """Record a run of the item over this export as ``running`` (and the raw export's row), or, if the export was
    ingested before and settled, the duplicate's outcome. Refuses an item that is not published, and a second run
    while one is going."""
    stored = items_repository.get_by_code_or_raise(session, item_code)
    require_published(stored)
    session.execute(select(CatalogItem.id).where(CatalogItem.id == stored.id).with_for_update())  # one run at a time
    runs.settle_dead_runs(session, stored.id, stale_after)
    going = runs.live_run(session, stored.id)
    if going is not None:
        raise IngestInProgress(
            f"{item_code} is being ingested as batch {going.id} since {going.started_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(host {going.host}, pid {going.pid}); run it again when that run has finished"
        )
    raw, file_name = record_raw_export(session, raw_dir, stored.id, item_code, export), export.name
    earlier = session.scalar(
        select(IngestBatch)
        .where(IngestBatch.raw_export_id == raw.id, IngestBatch.outcome.in_(runs.SETTLED))
        .order_by(IngestBatch.id.desc())
        .limit(1)
    )
    if earlier is not None:  # the same export again: a retry or a rerun publishes nothing twice
        store_raw_file(raw, export)
        _audit_duplicate(session, stored, raw, earlier, file_name, trigger)
        # The same export again: delivered anew, unless it is the file already taken, still in the drop folder.
        feeds.record(session, item_code, feeds.UNCHANGED if file_name == raw.file_name else feeds.DUPLICATE)
        outcome = replace(outcome_of(item_code, raw, earlier, "duplicate"), duplicate_of_outcome=earlier.outcome)
        return replace(outcome, reasons=[reason("already_ingested", batch=earlier.id, outcome=earlier.outcome)])
    host, pid = runs.this_process()
    batch = IngestBatch(
        item_id=stored.id, raw_export_id=raw.id, outcome=runs.RUNNING, trigger=trigger, host=host, pid=pid,
        started_at=utcnow(), finished_at=None, reasons=[], report={},
    )  # fmt: skip
    session.add(batch)
    session.flush()
    department = stored.declaration.department
    return StartedRun(batch.id, raw.id, item_code, department, raw.sha256, file_name, trigger)


def process_run(
    session: Session, started: StartedRun, export: ExportFile, *, reports_dir: Path, retention_days: int
) -> IngestOutcome:
    """The work of a started run; the raw file is written meanwhile, and is there before the caller commits."""
    raw = session.get_one(RawExport, started.raw_export_id)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-raw") as background:
        kept = background.submit(store_raw_file, raw, export)  # copied and synced while the export is processed
        outcome = _ingest_new_export(session, started, raw, export, reports_dir, retention_days)
        kept.result()  # before the caller commits: a batch never refers to a raw file that is not there
    return outcome


def _ingest_new_export(
    session: Session, started: StartedRun, raw: RawExport, export: ExportFile, reports_dir: Path, retention_days: int
) -> IngestOutcome:
    try:
        return _ingest_attempt(session, started, raw, export, reports_dir, retention_days, speculate=True)
    except DecodedOtherwise:  # not the UTF-8 text it began as (GB18030, say): read again, decoded first
        return _ingest_attempt(session, started, raw, export, reports_dir, retention_days, speculate=False)


def _ingest_attempt(
    session: Session,
    started: StartedRun,
    raw: RawExport,
    export: ExportFile,
    reports_dir: Path,
    retention_days: int,
    speculate: bool,
) -> IngestOutcome:
    stored = items_repository.get_by_code_or_raise(session, started.item_code)
    batch = session.get_one(IngestBatch, started.batch_id)
    fields, policy = stored.declaration.fields, stored.declaration.quality
    floor = quality.row_floor(_current_row_count(session, stored.id), policy)
    failing = FailingRowsFile(failing_rows_path(reports_dir, started.item_code, batch.id))
    validator: quality.BatchValidator | None = None
    sampler = detection.FieldSampler(fields)
    try:
        # Anything that fails rolls the staged version back to the savepoint.
        with session.begin_nested(), opened_table(session, stored.id, export, speculate) as table:
            delta = changes.is_delta(table, stored.declaration.load)
            chunks = changes.conform_export(table, fields, stored.declaration.load)  # bad columns fail here
            validator = quality.BatchValidator(fields, floor, failing, delta=delta)
            writer = stage(session, stored.id, fields, chunks, validator, sampler, delta=delta)
            report = _judged_while_indexing(writer, validator)
            dropped = _rows_to_drop(report, policy, validator.rows_read)
            if dropped and not delta and validator.rows_read - len(dropped) < floor.minimum:
                dropped = None  # what would be left is itself a volume drop
            if dropped is None:
                raise _Quarantine(report)
            writer.delete_rows(dropped)
            _require_still_published(session, stored.id, started.item_code)
            version = writer.finish()
            if delta:  # what the version would have left is judged as a full export's rows are
                volume = quality.volume_check(version.row_count, floor)
                report = quality.with_check(report, volume)
                if not volume.success:
                    raise _Quarantine(report)
    except _Quarantine as quarantine:
        _finish(batch, "quarantined", validator, quarantine.report, kept=failing.finish())
        return _audited(session, started, outcome_of(started.item_code, raw, batch, "quarantined"),
                        failed_checks=_failed_checks(quarantine.report))  # fmt: skip
    except DATA_PROBLEMS as error:  # the export cannot be read whole: its rows' checks are incomplete
        failing.discard()
        _finish(batch, "quarantined", validator, reasons=[error.message])
        return _audited(session, started, outcome_of(started.item_code, raw, batch, "quarantined"))
    except BaseException:
        failing.discard()
        raise
    applied = writer.changes if isinstance(writer, DeltaWriter) else None
    _finish(batch, "published", validator, report, version, dropped, kept=failing.finish(), accepted=writer.row_count,
            changes=applied)  # fmt: skip
    detection.propose_from(session, stored.id, sampler, batch.id)
    prune_versions(session, stored.id, retention_days)
    detail = {"load": applied.as_dict(), "version_rows": version.row_count} if applied is not None else {}
    return _audited(session, started, outcome_of(started.item_code, raw, batch, "published", version), **detail)


def _record_end(engine: Engine, started: StartedRun, outcome: str, what: str, reports_dir: Path) -> None:
    """Record a run that ended without an outcome of its work, in a transaction of its own (best effort: if the
    database is what failed, the record stays ``running`` until the run is found dead)."""
    failing_rows_path(reports_dir, started.item_code, started.batch_id).unlink(missing_ok=True)
    try:
        with session_scope(engine) as session:
            batch = session.get_one(IngestBatch, started.batch_id)
            batch.outcome, batch.finished_at = outcome, utcnow()
            batch.reasons = [reason("run_ended", what=what)]
            audit.record(
                session, started.trigger, started.department, f"ingest.{outcome}", outcome,
                item_code=started.item_code, batch_id=started.batch_id, sha256=started.sha256,
                file_name=started.file_name,
            )  # fmt: skip
            feeds.record(session, started.item_code, outcome)
    except Exception:
        logger.exception("batch %d could not be recorded as %s", started.batch_id, outcome)


class _Quarantine(Exception):
    def __init__(self, report: quality.QualityReport) -> None:
        self.report = report


def stage(
    session: Session,
    item_id: int,
    fields: Sequence[FieldDeclaration],
    chunks: Iterator[ConformedChunk],
    validator: quality.BatchValidator | None,
    sampler: detection.FieldSampler | None = None,
    delta: bool = False,
) -> VersionWriter:
    """Conform, validate and write the export chunk by chunk into the item's next version table (``delta``: an
    incremental export's rows, staged to be merged into the current version's generation).

    Three things overlap: the next chunk is read and conformed (Arrow, mostly outside the GIL) and the earlier
    ones written (the database loads them) while this thread validates the current one. The writes queue up to
    WRITES_QUEUED chunks, so that the database keeps loading while Great Expectations judges a batch of rows. Without
    a validator (an operator's release) the rows whose values do not parse are left out.
    """
    writer = DeltaWriter(session, item_id, fields) if delta else VersionWriter(session, item_id, fields)
    # One writing thread: the session's connection is used by one thread at a time (this one waits, below).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") as write_pool:
        written: deque[Future[None]] = deque()
        ahead = prefetched(chunks, "ingest-read")
        with closing(ahead):  # on a failure, the reading thread is done with the chunks before the export is let go
            for chunk in ahead:
                while len(written) >= WRITES_QUEUED or (written and written[0].done()):
                    written.popleft().result()  # a failed write fails the staging at once
                leave_out = chunk.rejected_rows if validator is None else None
                written.append(write_pool.submit(writer.write, chunk, leave_out))
                if validator is not None:
                    validator.add(chunk)
                if sampler is not None:
                    sampler.add(chunk)
        while written:
            written.popleft().result()
    return writer


def _judged_while_indexing(writer: VersionWriter, validator: quality.BatchValidator) -> quality.QualityReport:
    """The batch rules (Great Expectations, in this process) judged while the database builds a full version's
    indexes on the session's connection."""
    if type(writer) is not VersionWriter:
        return validator.finish()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-index") as pool:
        indexed = pool.submit(writer.index)
        report = validator.finish()
        indexed.result()
    return report


def _require_still_published(session: Session, item_id: int, item_code: str) -> None:
    """Checked again with the item's row locked just before the version is published, so that an item retired or
    withdrawn while its export was processed gets no new version (the lock makes a retirement wait or win)."""
    status = session.scalar(select(CatalogItem.status).where(CatalogItem.id == item_id).with_for_update())
    if status != ItemStatus.PUBLISHED.value:
        raise ItemNotPublished(f"catalog item {item_code} was {status} while its export was processed; nothing was "
                               "published")  # fmt: skip


def require_published(stored: items_repository.StoredItem) -> None:
    if stored.status is not ItemStatus.PUBLISHED:
        raise ItemNotPublished(
            f"catalog item {stored.declaration.code} is {stored.status.value}, not published: no data is ingested "
            "into it"
        )


def _rows_to_drop(report: quality.QualityReport, policy: QualityPolicy, rows_read: int) -> set[int] | None:
    """The rows to leave out of a publication (none for a clean batch), or None to quarantine the batch."""
    if report.success:
        return set()
    droppable = policy.bad_rows is BadRowPolicy.DROP and report.only_row_failures
    if droppable and len(report.failing_rows) <= policy.max_bad_share * rows_read:
        return set(report.failing_rows)
    return None


def _current_row_count(session: Session, item_id: int) -> int | None:
    statement = (
        select(ItemVersion.row_count)
        .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
        .where(CatalogItem.id == item_id)
    )
    return session.scalar(statement)


def _finish(
    batch: IngestBatch,
    outcome: str,
    validator: quality.BatchValidator | None = None,
    report: quality.QualityReport | None = None,
    version: ItemVersion | None = None,
    dropped: set[int] | None = None,
    reasons: list[str] | None = None,
    kept: StoredFailingRows | None = None,
    accepted: int = 0,
    changes: Changes | None = None,
) -> None:
    """Complete a running batch's record with the outcome of its work (``accepted``: the export's rows published)."""
    rows_read = validator.rows_read if validator is not None else 0
    failed_rules = len(report.failing_rows) if report is not None else 0
    batch.outcome, batch.finished_at = outcome, utcnow()
    batch.rows_read, batch.rows_accepted, batch.rows_rejected = rows_read, accepted, rows_read - accepted
    batch.rows_failed_rules = failed_rules
    batch.rows_refused_with_batch = 0 if version is not None else rows_read - failed_rules
    batch.version_id = version.id if version is not None else None
    batch.reasons = reasons if reasons is not None else (report.reasons() if report is not None else [])
    batch.report = {**report.as_dict(), "dropped_rows": sorted(dropped or ())} if report is not None else {}
    if changes is not None:
        batch.report = {**batch.report, "load": changes.as_dict()}
    if kept is not None:
        batch.failing_rows_path, batch.failing_rows_sha256 = str(kept.path), kept.sha256


def outcome_of(
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
        changes=(batch.report or {}).get("load"),
    )


# --- the audit rows: counts, digests and declared names only, never a value of the export -----------------------


def _audited(session: Session, started: StartedRun, outcome: IngestOutcome, **detail: Any) -> IngestOutcome:
    """Audit a new batch's outcome (``ingest.published`` or ``ingest.quarantined``) as the pipeline's trigger, for
    the item's department. Reasons are counted, not copied: a quality report's texts may quote cells."""
    published = outcome.outcome == "published"
    audit.record(
        session, started.trigger, started.department, f"ingest.{outcome.outcome}", "done",
        item_code=outcome.item, version=outcome.version, rows=outcome.rows_accepted if published else None,
        batch_id=outcome.batch_id, sha256=outcome.sha256, file_name=started.file_name, rows_read=outcome.rows_read,
        rows_rejected=outcome.rows_rejected, reasons=len(outcome.reasons), **detail,
    )  # fmt: skip
    feeds.record(session, outcome.item, outcome.outcome)
    if outcome.outcome == "quarantined":
        notices.batch_quarantined(session, outcome.item, outcome.batch_id, outcome.reasons)
    notices.version_published(session, outcome.item, outcome.version)
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


def _failed_checks(report: quality.QualityReport) -> list[str]:
    """The failed rules by declared field name (``*``: the whole batch), without their observed values."""
    return [f"{check.field}: {check.rule}" for check in report.checks if not check.success]
