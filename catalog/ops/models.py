from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime


class ItemFeed(Base):
    """What the platform knows of an item's feed of exports: one row per item, written by the ingestion path in the
    transaction of each outcome (catalog/ops/feeds.py), read by the freshness view (catalog/ops/freshness.py)."""

    __tablename__ = "item_feed"

    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"), primary_key=True)
    # An export came (published, quarantined, or the same export again): the department delivered.
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A new version was published (by the pipeline, or an operator's release of a quarantined batch).
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last pull attempt and what it found: no_export, duplicate, published, quarantined, failed, interrupted.
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_check_outcome: Mapped[str | None] = mapped_column(String(16))
    # The freshness status last notified about (late, overdue, never_received), None once back on time: a
    # notification fires once per status in a lateness episode.
    notified_status: Mapped[str | None] = mapped_column(String(16))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
