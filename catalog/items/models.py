from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.db import Base, UTCDateTime, utcnow


class CatalogItem(Base):
    """A shared catalog item (共享目录条目 / 信息资源)."""

    __tablename__ = "catalog_item"
    __table_args__ = (
        Index("ix_catalog_item_status_level", "status", "level"),
        Index("ix_catalog_item_department_id", "department_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    source_system_id: Mapped[int | None] = mapped_column(ForeignKey("source_system.id"))
    update_frequency: Mapped[str] = mapped_column(String(64))
    sharing_type: Mapped[str] = mapped_column(String(16))
    open_data: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # QualityPolicy
    load: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # LoadPolicy
    # Derived: the highest level of the item's fields.
    level: Mapped[int] = mapped_column(ForeignKey("classification_level.level"))
    # The published version readers get; moved in the same transaction that publishes a new one.
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("item_version.id", use_alter=True, name="fk_catalog_item_current_version_id_item_version")
    )
    # Derived: lower-cased code, title, description, tags, field names and labels for keyword search.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    fields: Mapped[list[ItemField]] = relationship(
        back_populates="item", order_by="ItemField.position", cascade="all, delete-orphan"
    )


class ItemField(Base):
    """A field (信息项) of an item, named exactly as in the export."""

    __tablename__ = "item_field"
    __table_args__ = (
        UniqueConstraint("item_id", "name", name="uq_item_field_item_name"),
        # The review queue counts the pending fields per item from this index alone.
        Index("ix_item_field_review_status", "review_status", "item_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    data_type: Mapped[str] = mapped_column(String(16))
    nullable: Mapped[bool] = mapped_column(Boolean, default=True)
    is_key: Mapped[bool] = mapped_column(Boolean, default=False)
    semantic_type: Mapped[str] = mapped_column(String(32))
    allowed_values: Mapped[list[str] | None] = mapped_column(JSON)
    pattern: Mapped[str | None] = mapped_column(String(500))
    minimum: Mapped[str | None] = mapped_column(String(64))
    maximum: Mapped[str | None] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(ForeignKey("classification_level.level"))
    masking: Mapped[str] = mapped_column(String(16))
    # A data officer's review: pending until the level and semantic type are approved, and pending again when
    # a steward changes either (the declared values are then the steward's proposal).
    review_status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[CatalogItem] = relationship(back_populates="fields")


class ItemTag(Base):
    __tablename__ = "item_tag"
    __table_args__ = (Index("ix_item_tag_tag", "tag"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ItemChange(Base):
    """Append-only history of an item's declaration: who changed what, when."""

    __tablename__ = "item_change"
    __table_args__ = (Index("ix_item_change_item_id_changed_at", "item_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
