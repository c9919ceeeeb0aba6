from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
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
