"""Push delivery: where a subscription's new versions are sent (its targets, chosen by the consumer's stewards) and
what became of each sending (one record per target and version)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class DeliveryTarget(Base):
    """A webhook (a signed notice with a short-lived download link), a table in the consumer's own PostgreSQL
    database (written with COPY; its connection string lives in the environment variable ``secret_variable``, never
    here), or a file drop (CSV or Parquet under an fsspec URL). ``secret_variable`` is derived from the department and
    the name (as a notification channel's): a webhook's signing secret, or a database's connection string."""

    __tablename__ = "delivery_target"
    __table_args__ = (
        UniqueConstraint("department_id", "name", name="uq_delivery_target_department_id_name"),
        # A secret variable is one target's for good: never another department's (a removed target is a tombstone).
        UniqueConstraint("secret_variable", name="uq_delivery_target_secret_variable"),
        Index("ix_delivery_target_subscription_id", "subscription_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))  # the consumer
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # webhook | database | file
    url: Mapped[str | None] = mapped_column(String(2000))  # webhook: where; file: the folder (fsspec URL)
    db_schema: Mapped[str | None] = mapped_column(String(63))  # database: the consumer's schema and table
    db_table: Mapped[str | None] = mapped_column(String(63))
    mode: Mapped[str] = mapped_column(String(16), default="full")  # database: full | changed (by the item's key)
    file_format: Mapped[str | None] = mapped_column(String(16))  # file: csv | parquet
    secret_variable: Mapped[str | None] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # removed: kept so its name stays its own


class PushDelivery(Base):
    """One version sent to one target: delivered, failed (after ``attempts``; ops see it, the next run tries again)."""

    __tablename__ = "push_delivery"
    __table_args__ = (
        UniqueConstraint("target_id", "version", name="uq_push_delivery_target_id_version"),
        Index("ix_push_delivery_status_id", "status", "id"),
        Index("ix_push_delivery_item_code_version", "item_code", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("delivery_target.id", ondelete="SET NULL"))
    subscription_id: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(32))  # the consumer's code (kept when the target is deleted)
    target_name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # delivered | failed
    mode: Mapped[str | None] = mapped_column(String(16))  # how a database target was written: full | changed
    rows: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # in words fit for ops: never a secret, an address or a value
    trigger: Mapped[str] = mapped_column(String(200))  # airflow:<dag>/<run>, cli:<user> …
    first_tried_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_tried_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # a send claimed then (``sending``)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
