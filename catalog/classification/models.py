from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from catalog.db import Base


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
