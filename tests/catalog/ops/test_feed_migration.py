"""Revision 0010 on both backends: an upgraded platform knows, from its run records, when each item last received an
export and last published, so that nothing it pulled before shows as never received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import inspect, select, text

from catalog.db import make_engine, session_scope
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.ingest.service import ingest_export
from catalog.migrate import alembic_config, upgrade
from catalog.ops.models import ItemFeed
from tests.catalog.helpers import import_demo


def test_the_feeds_are_filled_from_the_run_records(
    backend: str, database_factory: Any, samples_dir: Path, tmp_path: Path
) -> None:
    url = database_factory(backend)
    engine = make_engine(url)
    with session_scope(engine) as session:
        import_demo(session)
        data = (samples_dir / "psga_population_20261121.csv").read_bytes()
        ingest_export(session, "PSGA-RK-0001", data, "p.csv", raw_dir=tmp_path / "raw", trigger="test")
        batch = select(IngestBatch.started_at, ItemVersion.published_at)
        started, published = session.execute(batch.join(ItemVersion, ItemVersion.id == IngestBatch.version_id)).one()

    command.downgrade(alembic_config(url), "0009")
    assert "item_feed" not in inspect(engine).get_table_names()
    upgrade(engine)

    with engine.connect() as connection:
        rows = connection.execute(text("SELECT item_id, last_checked_at, notified_status FROM item_feed")).all()
    assert [(checked, notified) for _, checked, notified in rows] == [(None, None)]  # one row: the item ingested
    with session_scope(engine) as session:
        feed = session.get_one(ItemFeed, rows[0][0])
        assert (feed.last_received_at, feed.last_published_at) == (started, published)
    engine.dispose()
