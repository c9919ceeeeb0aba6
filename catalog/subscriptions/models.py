from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow

OPEN_STATUSES = "status IN ('requested', 'provider_approved', 'active')"


class Subscription(Base):
    """A consumer department's request for an item's fields, and what became of it.

    States: requested -> provider_approved -> active (conditional items at or above the officer level need
    both approvals), requested -> active (unconditional items at or below the automatic level, or a
    conditional item below the officer level once its provider approves), requested | provider_approved ->
    rejected, active -> revoked | expired.
    """

    __tablename__ = "subscription"
    __table_args__ = (
        Index("ix_subscription_consumer_item_status", "consumer_department_id", "item_id", "status"),
        Index("ix_subscription_status_expires_at", "status", "expires_at"),
        # One open subscription per consumer and item, even when two requests race.
        Index(
            "uq_subscription_open",
            "item_id",
            "consumer_department_id",
            unique=True,
            postgresql_where=text(OPEN_STATUSES),
            sqlite_where=text(OPEN_STATUSES),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    consumer_department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24))
    fields: Mapped[list[str]] = mapped_column(JSON)  # the field names asked for (and, once active, granted)
    # read: the approved fields' data; verify: look-ups by key of records the consumer holds (its fields: what a
    # match may compare and returns)
    kind: Mapped[str] = mapped_column(String(8), default="read", server_default="read")
    approved_level: Mapped[int | None] = mapped_column(Integer)  # fields above it are masked
    # Row-level scope (catalog.subscriptions.scopes): the rows asked for, and the rows granted (set or narrowed by
    # the provider's steward at approval; it holds in every read, count, look-up and delivery). None: every row.
    requested_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    period_days: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    provider_decided_by: Mapped[str | None] = mapped_column(String(200))
    provider_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    officer_decided_by: Mapped[str | None] = mapped_column(String(200))
    officer_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(200))  # who rejected or revoked it
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected or revoked
    # Fields kept masked whatever their level: those masked when it was approved, and those raised above its
    # approved level since. A level that falls unmasks nothing until the subscription is re-approved.
    masked_fields: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # A re-approval at the fields' current levels, asked for by the consumer: requested -> provider_approved.
    reapproval_status: Mapped[str | None] = mapped_column(String(24))
    reapproval_level: Mapped[int | None] = mapped_column(Integer)
    reapproval_requested_by: Mapped[str | None] = mapped_column(String(200))
    reapproval_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A renewal is a re-approval that also adds days to the period once approved.
    renewal_days: Mapped[int | None] = mapped_column(Integer)
    # Notifications (catalog/notifications): the consumer's opt-in for a notice of each new version of the item, and
    # when the notice that the subscription expires within a week was made (once).
    notify_new_versions: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Push delivery (catalog.push): the consumer's stewards may pause sending new versions to its targets.
    deliveries_paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    expiry_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
