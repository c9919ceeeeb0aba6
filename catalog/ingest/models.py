from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class RawExport(Base):
    """An export exactly as fetched, kept in the raw store under its SHA-256 (the same bytes are kept once)."""

    __tablename__ = "raw_export"
    __table_args__ = (UniqueConstraint("item_id", "sha256", name="uq_raw_export_item_sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_path: Mapped[str] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IngestBatch(Base):
    """One run of the ingestion path over one export: its outcome, counts and quality report."""

    __tablename__ = "ingest_batch"
    __table_args__ = (
        Index("ix_ingest_batch_item_id_started_at", "item_id", "started_at"),
        # Run records by outcome (the dead-run scan of every listing, the quarantine) and one item's, newest first.
        Index("ix_ingest_batch_outcome_id", "outcome", "id"),
        Index("ix_ingest_batch_item_id_id", "item_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    raw_export_id: Mapped[int] = mapped_column(ForeignKey("raw_export.id"))
    # running (its record is committed before the work) | published | quarantined | released | discarded
    # | failed (an unexpected error; the next run retries the export) | interrupted (its process died while running)
    outcome: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(200))  # who or what ran it: cli:user, airflow:dag/run
    host: Mapped[str | None] = mapped_column(String(255))  # where it ran (None: recorded before revision 0009)
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while running
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)  # rows read but not published
    # Rows that broke at least one rule, and rows that broke none but went with a refused (quarantined) batch;
    # None for batches recorded before revision 0009.
    rows_failed_rules: Mapped[int | None] = mapped_column(Integer)
    rows_refused_with_batch: Mapped[int | None] = mapped_column(Integer)
    # Every failing row (row, field, rule) as gzip CSV in the reports store; the JSON report keeps the first few.
    failing_rows_path: Mapped[str | None] = mapped_column(String(1000))
    failing_rows_sha256: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("item_version.id"))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # An operator's release (with override) or discard of a quarantined batch.
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    # When the version this batch published was announced as the item's Airflow Asset event (None: not yet, or it
    # published nothing). A release outside Airflow (API, command line) is announced by the announce_releases DAG.
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemVersion(Base):
    """A published, immutable version of an item's data: its table and the fields it was published with."""

    __tablename__ = "item_version"
    __table_args__ = (UniqueConstraint("item_id", "number", name="uq_item_version_item_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    table_name: Mapped[str] = mapped_column(String(63))  # a table, or a view of a generation's rows
    # The generation table whose rows the version's view shows (catalog/ingest/generations.py); None: its own table.
    generation: Mapped[str | None] = mapped_column(String(63))
    row_count: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"name", "column", "data_type", ...}]
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
