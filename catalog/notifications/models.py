from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class Notification(Base):
    """Something people should know about, such as a field of a subscription masked from now on.

    ``audience`` says who: ``department`` (its stewards and users), ``stewards`` (the department's stewards), or
    everyone holding a platform-wide role (``data_officers``, ``ops``; the department, if any, is what it is about).
    """

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_department_id_created_at", "department_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(16), default="department", server_default="department")
    kind: Mapped[str] = mapped_column(String(40))
    item_code: Mapped[str | None] = mapped_column(String(64))
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationChannel(Base):
    """A department's outward channel: a webhook its systems receive, signed with a secret that lives in the
    environment variable ``secret_variable`` (its name is derived, never chosen, and the value never stored)."""

    __tablename__ = "notification_channel"
    __table_args__ = (
        UniqueConstraint("department_id", "name", name="uq_notification_channel_department_id_name"),
        # Department codes and names may meet at a hyphen (psga + fj-hook, psga-fj + hook): one secret, one channel.
        UniqueConstraint("secret_variable", name="uq_notification_channel_secret_variable"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # webhook
    url: Mapped[str] = mapped_column(String(2000))
    secret_variable: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationDelivery(Base):
    """One sending of a notification over one channel to one target (``user:<name>`` for mail, ``channel:<id>``
    for a webhook), enqueued in the notification's transaction and sent later by the drainer (the outbox)."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        Index("ix_notification_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_delivery_notification_id", "notification_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    target: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | retrying | sent | gave_up
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)  # what failed, without secrets or personal data
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
