from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """Something a department should know about, such as a field of a subscription masked from now on."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_department_id_created_at", "department_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    item_code: Mapped[str | None] = mapped_column(String(64))
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
