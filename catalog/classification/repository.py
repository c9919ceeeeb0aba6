from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.classification.models import ClassificationLevel, SemanticTypeRule
from catalog.classification.schemas import ClassificationScheme, LevelDeclaration
from catalog.classification.types import SemanticType


def load_scheme(session: Session) -> ClassificationScheme:
    levels = session.scalars(select(ClassificationLevel).order_by(ClassificationLevel.level))
    rules = session.scalars(select(SemanticTypeRule))
    return ClassificationScheme(
        levels=[
            LevelDeclaration(level=row.level, code=row.code, name_zh=row.name_zh, name_en=row.name_en) for row in levels
        ],
        minimum_levels={SemanticType(rule.semantic_type): rule.minimum_level for rule in rules},
    )


def save_scheme(session: Session, scheme: ClassificationScheme) -> bool:
    """Upsert the declared levels and minimum levels; returns whether anything changed."""
    current = load_scheme(session)
    changed = False
    current_levels = {level.level: level for level in current.levels}
    for level in scheme.levels:
        if current_levels.get(level.level) != level:
            session.merge(ClassificationLevel(**level.model_dump()))
            changed = True
    session.flush()
    for semantic_type, minimum in scheme.minimum_levels.items():
        if current.minimum_levels.get(semantic_type) != minimum:
            session.merge(SemanticTypeRule(semantic_type=semantic_type.value, minimum_level=minimum))
            changed = True
    session.flush()
    return changed
