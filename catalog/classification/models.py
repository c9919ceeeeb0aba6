from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base, UTCDateTime, utcnow


class ClassificationLevel(Base):
    """One level of the classification scheme (分级): higher is more protected."""

    __tablename__ = "classification_level"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(32))
    name_en: Mapped[str] = mapped_column(String(64))


class SemanticTypeRule(Base):
    """The lowest level a field of a semantic type may be classified at."""

    __tablename__ = "semantic_type_rule"

    semantic_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    minimum_level: Mapped[int] = mapped_column(ForeignKey("classification_level.level"))


class ClassificationProposal(Base):
    """A proposed level or semantic type for a field, from automatic detection or a steward, until an officer
    decides the field."""

    __tablename__ = "classification_proposal"
    __table_args__ = (
        Index("ix_classification_proposal_status_created_at", "status", "created_at"),
        Index("ix_classification_proposal_item_id_field_name", "item_id", "field_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    field_name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))  # detection | steward
    proposed_level: Mapped[int] = mapped_column(Integer)
    proposed_semantic_type: Mapped[str] = mapped_column(String(32))
    proposed_masking: Mapped[str | None] = mapped_column(String(16))  # a steward's masking rule, if it changes
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # match share, masked examples, batch
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | decided
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_id: Mapped[int | None] = mapped_column(Integer)  # the decision that closed it


class FieldReview(Base):
    """An officer's decision on a field's level and semantic type: append-only history."""

    __tablename__ = "field_review"
    __table_args__ = (
        Index("ix_field_review_item_id_field_name", "item_id", "field_name"),
        Index("ix_field_review_decided_by_decided_at", "decided_by", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalog_item.id", ondelete="CASCADE"))
    field_name: Mapped[str] = mapped_column(String(128))
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    from_semantic_type: Mapped[str] = mapped_column(String(32))
    to_semantic_type: Mapped[str] = mapped_column(String(32))
    suggested_level: Mapped[int | None] = mapped_column(Integer)  # the highest level an open proposal suggested
    from_masking: Mapped[str | None] = mapped_column(String(16))
    to_masking: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
