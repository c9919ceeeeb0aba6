from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import inspect, select, text

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


def test_0009_downgrades_keeping_finished_batches_and_upgrades_them_again(
    backend: str, database_factory: Any, samples_dir: Path, tmp_path: Path
) -> None:
    from catalog.ingest.models import IngestBatch
    from catalog.ingest.service import ingest_export
    from tests.catalog.helpers import import_demo

    url = database_factory(backend)
    engine = make_engine(url)
    with session_scope(engine) as session:
        import_demo(session)
        data = (samples_dir / "psga_population_20261121.csv").read_bytes()
        ingest_export(session, "PSGA-RK-0001", data, "p.csv", raw_dir=tmp_path / "raw", trigger="test")
        running = session.scalars(select(IngestBatch)).one()
        session.add(IngestBatch(item_id=running.item_id, raw_export_id=running.raw_export_id, outcome="running",
                                trigger="test", started_at=running.started_at, reasons=[], report={}))  # fmt: skip

    command.downgrade(alembic_config(url), "0008")
    columns = {column["name"]: column for column in inspect(engine).get_columns("ingest_batch")}
    assert "host" not in columns and not columns["finished_at"]["nullable"]
    with engine.connect() as connection:  # the unfinished run has no place in the older schema
        assert connection.execute(text("SELECT outcome FROM ingest_batch")).scalars().all() == ["published"]

    command.upgrade(alembic_config(url), "0009")
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT outcome, host, rows_failed_rules FROM ingest_batch")).all()
    assert [tuple(row) for row in kept] == [("published", None, None)]  # not known for batches recorded before
    engine.dispose()


def test_0020_downgrades_an_incremental_items_views_to_tables_of_their_own(
    backend: str, database_factory: Any, samples_dir: Path, tmp_path: Path
) -> None:
    from catalog.ingest.service import ingest_export
    from catalog.items.models import CatalogItem
    from tests.catalog.helpers import import_demo

    url = database_factory(backend)
    engine = make_engine(url)
    lines = (samples_dir / "psga_population_20261120.csv").read_text(encoding="utf-8-sig").splitlines()
    with session_scope(engine) as session:
        import_demo(session)
        item = session.scalars(select(CatalogItem).where(CatalogItem.code == "PSGA-RK-0001")).one()
        item.load = {"mode": "incremental"}
        deletion = [f"{lines[0]},_op", f"{lines[1].split(',')[0]},,,,,,,,D"]
        for name, body in (("full.csv", lines), ("delta.csv", deletion)):
            data = ("\n".join(body) + "\n").encode()
            outcome = ingest_export(session, item.code, data, name, raw_dir=tmp_path, trigger="test")
            assert outcome.outcome == "published"
        tables = [f"item_{item.id}_v1", f"item_{item.id}_v2"]

    command.downgrade(alembic_config(url), "0019")
    assert set(tables) <= set(inspect(engine).get_table_names()) and not inspect(engine).get_view_names()
    with engine.connect() as connection:
        counts = [connection.scalar(text(f'SELECT count(*) FROM "{name}"')) for name in tables]
    assert counts == [500, 499]
    upgrade(engine)
    engine.dispose()
