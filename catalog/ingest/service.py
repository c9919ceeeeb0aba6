"""The ingestion path for one export of one item: keep raw, decode, conform, validate, publish or quarantine.

The same function serves ``datashare ingest`` and the Airflow tasks. It only adds and flushes; the edge
commits, so a version is published (table, rows, version row, pointer) in one transaction or not at all.
A failure of the export itself is not an exception: it is a quarantined batch, recorded and committed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.departments.models import SourceSystem
from catalog.errors import DomainError
from catalog.ingest import quality
from catalog.ingest.conform import ConformedTable, conform
from catalog.ingest.decode import decode_export
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import publish_version
from catalog.ingest.raw_store import keep_raw_export
from catalog.ingest.tables import RawTable, read_csv, read_json, read_xlsx
from catalog.items import repository as items_repository
from catalog.items.models import CatalogItem


@dataclass(frozen=True)
class IngestOutcome:
    item: str
    outcome: str  # published | quarantined | duplicate
    batch_id: int
    sha256: str
    version: int | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_export(
    session: Session, item_code: str, data: bytes, file_name: str, *, raw_dir: Path, trigger: str
) -> IngestOutcome:
    stored = items_repository.get_by_code_or_raise(session, item_code)
    raw = keep_raw_export(session, raw_dir, stored.id, item_code, data, file_name)
    earlier = session.scalar(
        select(IngestBatch).where(IngestBatch.raw_export_id == raw.id).order_by(IngestBatch.id.desc()).limit(1)
    )
    if earlier is not None:  # the same export again: a retry or a rerun publishes nothing twice
        return _outcome(item_code, raw, earlier, "duplicate")
    started = utcnow()
    fields = stored.declaration.fields
    try:
        conformed = conform(_read_table(session, stored.id, data, file_name), fields)
    except DomainError as error:
        batch = _record(session, stored.id, raw, trigger, started, "quarantined", reasons=[error.message])
        return _outcome(item_code, raw, batch, "quarantined")
    report = quality.validate_batch(conformed, fields, previous_rows=_current_row_count(session, stored.id))
    if not report.success:
        batch = _record(session, stored.id, raw, trigger, started, "quarantined", conformed, report)
        return _outcome(item_code, raw, batch, "quarantined")
    version = publish_version(session, stored.id, fields, conformed.frame)
    batch = _record(session, stored.id, raw, trigger, started, "published", conformed, report, version)
    return _outcome(item_code, raw, batch, "published", version)


def _read_table(session: Session, item_id: int, data: bytes, file_name: str) -> RawTable:
    source = session.scalar(
        select(SourceSystem)
        .join(CatalogItem, CatalogItem.source_system_id == SourceSystem.id)
        .where(CatalogItem.id == item_id)
    )
    export_format = source.format if source else _format_from_name(file_name)
    if export_format == "xlsx":
        return read_xlsx(data)
    text = decode_export(data, source.encoding if source else "auto").text
    return read_json(text) if export_format == "json" else read_csv(text)


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
    started: Any,
    outcome: str,
    conformed: ConformedTable | None = None,
    report: quality.QualityReport | None = None,
    version: ItemVersion | None = None,
    reasons: list[str] | None = None,
) -> IngestBatch:
    rows_read = conformed.rows_read if conformed is not None else 0
    rejected = len(report.bad_rows) if report is not None else 0
    batch = IngestBatch(
        item_id=item_id,
        raw_export_id=raw.id,
        outcome=outcome,
        trigger=trigger,
        started_at=started,
        finished_at=utcnow(),
        rows_read=rows_read,
        rows_accepted=version.row_count if version is not None else 0,
        rows_rejected=rejected,
        version_id=version.id if version is not None else None,
        reasons=reasons if reasons is not None else (report.reasons() if report is not None else []),
        report=report.as_dict() if report is not None else {},
    )
    session.add(batch)
    session.flush()
    return batch


def _outcome(
    item_code: str, raw: RawExport, batch: IngestBatch, outcome: str, version: ItemVersion | None = None
) -> IngestOutcome:
    number = version.number if version is not None else None
    if outcome == "duplicate" and batch.version_id is not None:
        number = None  # reported by the earlier batch
    return IngestOutcome(
        item=item_code,
        outcome=outcome,
        batch_id=batch.id,
        sha256=raw.sha256,
        version=number,
        rows_read=batch.rows_read,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        reasons=list(batch.reasons),
    )
