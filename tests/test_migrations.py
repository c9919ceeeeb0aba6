from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import inspect, select

from catalog.classification.models import ClassificationLevel, SemanticTypeRule
from catalog.db import make_engine, session_scope
from catalog.migrate import alembic_config, upgrade

TABLES = {
    "classification_level",
    "semantic_type_rule",
    "department",
    "source_system",
    "catalog_item",
    "item_field",
    "item_tag",
    "item_change",
}


def test_upgrade_from_empty_creates_the_schema_and_the_default_scheme(backend: str, database_factory: Any) -> None:
    engine = make_engine(database_factory(backend, migrate=False))
    upgrade(engine)

    assert set(inspect(engine).get_table_names()) >= TABLES
    with session_scope(engine) as session:
        levels = session.execute(select(ClassificationLevel.level, ClassificationLevel.name_zh)).all()
        assert sorted(levels) == [(1, "公开"), (2, "内部"), (3, "敏感"), (4, "核心")]
        rules = dict(session.execute(select(SemanticTypeRule.semantic_type, SemanticTypeRule.minimum_level)).all())
        assert rules["resident_id"] == 3
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again(backend: str, database_factory: Any) -> None:
    url = database_factory(backend)
    engine = make_engine(url)
    command.downgrade(alembic_config(url), "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()
