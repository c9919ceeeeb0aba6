from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    """Every data access and every decision: append-only (database triggers refuse updates and deletes)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_item_code_at", "item_code", "at"),
        Index("ix_audit_event_department_at", "department", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    principal: Mapped[str] = mapped_column(String(200))  # user:<name>, token:<id>, anonymous
    department: Mapped[str | None] = mapped_column(String(32))  # the principal's department
    action: Mapped[str] = mapped_column(String(64))  # data.read, subscription.approve, login.failed ...
    outcome: Mapped[str] = mapped_column(String(16))  # allowed | denied | done
    item_code: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int | None] = mapped_column(Integer)
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    fields_returned: Mapped[list[str]] = mapped_column(JSON, default=list)
    fields_masked: Mapped[list[str]] = mapped_column(JSON, default=list)
    rows: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # filters, format, reason ...


class AuditBlock(Base):
    """A sealed run of audit events: ids ``first_id``..``last_id`` (the events that exist there, ``row_count`` of
    them, hashed in id order into ``rows_hash``), chained to the block before by ``previous_hash`` and signed with
    the platform's audit key, which lives outside the database (``catalog.audit.chain``). Append-only."""

    __tablename__ = "audit_block"
    __table_args__ = (UniqueConstraint("first_id", name="uq_audit_block_first_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1, 2, 3 … in chain order
    first_id: Mapped[int] = mapped_column(Integer)
    last_id: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    rows_hash: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw Ed25519 public key
    signature: Mapped[str] = mapped_column(String(128))  # base64 of the Ed25519 signature of the block's hash
    # Diagnostics only (not hashed): each sealed event's id and the first bytes of its digest, so that verification
    # can tell a changed event from a missing, an inserted or two swapped ones. Read only for a block that fails.
    row_index: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class AuditVerification(Base):
    """The result of one verification of the chain (``datashare audit verify``, the seal_audit DAG)."""

    __tablename__ = "audit_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(200))  # cli:<user>, airflow:seal_audit …
    ok: Mapped[bool] = mapped_column(Boolean)
    from_block: Mapped[int | None] = mapped_column(Integer)
    to_block: Mapped[int | None] = mapped_column(Integer)
    blocks_checked: Mapped[int] = mapped_column(Integer)
    rows_checked: Mapped[int] = mapped_column(Integer)
    heads_checked: Mapped[int] = mapped_column(Integer)
    head_block: Mapped[int | None] = mapped_column(Integer)
    head_hash: Mapped[str | None] = mapped_column(String(64))
    unsealed_count: Mapped[int] = mapped_column(Integer)
    unsealed_first_id: Mapped[int | None] = mapped_column(Integer)
    unsealed_last_id: Mapped[int | None] = mapped_column(Integer)
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
