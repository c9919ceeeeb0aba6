"""The usage rollups: uses of each item by each consumer department, per day and per month, folded from the audit
trail (``catalog.utilisation.fold``), and how far the trail has been folded."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime


class _Uses:
    """The measures of a rollup row: counts of uses and rows of data that left the platform."""

    reads: Mapped[int] = mapped_column(BigInteger, default=0)  # data.read, allowed: pages, downloads, previews
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    verifications: Mapped[int] = mapped_column(BigInteger, default=0)  # data.verify, allowed: look-up requests
    deliveries: Mapped[int] = mapped_column(BigInteger, default=0)  # data.deliver, done: pushed deliveries
    rows_delivered: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageDay(_Uses, Base):
    """An item's uses by one consumer department on one UTC day ('' for uses without a department: anonymous reads
    of open data)."""

    __tablename__ = "usage_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(32), primary_key=True)


class UsageMonth(_Uses, Base):
    """The same per UTC calendar month (``month``: its first day), for the figures over time."""

    __tablename__ = "usage_month"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    item_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    department: Mapped[str] = mapped_column(String(32), primary_key=True)


class UsageFold(Base):
    """One row (id 1): every audit event with an id up to ``folded_to`` is in the rollups, and no event at or below
    it can still be committed. ``pending_to`` and ``pending_holders``: on PostgreSQL, the newest id seen and the
    transactions then running that may still add events at or below it; once they have all ended, the fold may
    reach it."""

    __tablename__ = "usage_fold"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    folded_to: Mapped[int] = mapped_column(Integer, default=0)
    pending_to: Mapped[int | None] = mapped_column(Integer)
    pending_holders: Mapped[list[str]] = mapped_column(JSON, default=list)
    folded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
