"""Incremental publication under load and on release.

The first delta turns the current version's table into a generation (``ALTER TABLE … RENAME``: on PostgreSQL an
ACCESS EXCLUSIVE lock). A long read of that version (a download, a delivery) must not make the ingest wait for it
with every new read of the item queued behind: the ingest waits a few seconds at most, then fails with a clear,
retryable error (the batch recorded failed, not quarantined; nothing published), and the next run publishes.

An operator's release of a quarantined delta whose keys repeat applies the last row of each key in the export's
order (a change log's meaning), never two rows of one key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillWaiting
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.orm import Session

from catalog.db import session_scope
from catalog.ingest import generations
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.ingest.quarantine import ReleaseMustWait, release_batch
from catalog.ingest.service import IngestOutcome, run_ingest
from catalog.items.models import CatalogItem
from tests.catalog.ingest.test_incremental import delta, incremental, key, lines, moved, newcomers, published
from tests.catalog.ingest.test_ingest_service import POPULATION, csv_bytes, current_version, run

__all__ = ["incremental", "lines", "newcomers"]  # fixtures shared with test_incremental

PATIENCE = 20.0  # seconds the test lets a publication wait behind the reader before calling it blocked


def ingest(engine: Engine, work: Path, data: bytes, name: str) -> IngestOutcome:
    return run_ingest(engine, POPULATION, data, name, raw_dir=work / "raw", reports_dir=work / "reports",
                      trigger="test")  # fmt: skip


@pytest.fixture
def published_once(backend: str, platform: Engine, tmp_path: Path, lines: list[str]) -> Engine:
    """PostgreSQL, the population item incremental, its full export committed as version 1."""
    if backend != "postgresql":
        pytest.skip("the lock of the conversion is PostgreSQL's (SQLite has one writer and no lock_timeout)")
    with session_scope(platform) as session:
        session.execute(update(CatalogItem).where(CatalogItem.code == POPULATION).values(load={"mode": "incremental"}))
    assert ingest(platform, tmp_path, csv_bytes(lines), "full.csv").version == 1
    return platform


@pytest.fixture
def reader(published_once: Engine) -> Iterator[Connection]:
    """A long read of version 1 (a download's COPY, a delivery): a transaction that has selected from its table."""
    with published_once.connect() as connection:
        connection.begin()
        table = connection.scalar(select(ItemVersion.table_name).where(ItemVersion.number == 1))
        assert connection.scalar(text(f'SELECT count(*) FROM "{table}"')) == 500
        yield connection
        connection.rollback()


def test_a_first_delta_does_not_wait_behind_a_long_read_of_the_current_version(
    published_once: Engine, reader: Connection, tmp_path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generations, "CONVERSION_LOCK_TIMEOUT", "1s")
    export = delta(lines[0], [moved(lines[1])])
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        publication = pool.submit(ingest, published_once, tmp_path, export, "delta.csv")
        try:
            publication.exception(timeout=PATIENCE)
        except StillWaiting:
            reader.rollback()  # lets it finish, so that the test ends
            publication.exception()
            pytest.fail(f"the publication waited behind the reader for more than {PATIENCE:.0f} s (blocking reads)")
    error = publication.exception()
    assert isinstance(error, generations.VersionBusy), error
    assert time.monotonic() - started < 10
    assert "could not be locked within 1s" in str(error) and "retried" in str(error)
    with session_scope(published_once) as session:
        assert current_version(session, POPULATION).number == 1  # type: ignore[union-attr]
        batch = session.scalars(select(IngestBatch).order_by(IngestBatch.id.desc())).first()
        assert batch is not None and batch.outcome == "failed" and batch.version_id is None  # not quarantined
    table = reader.scalar(select(ItemVersion.table_name).where(ItemVersion.number == 1))
    assert reader.scalar(text(f'SELECT count(*) FROM "{table}"')) == 500  # the reader read on, as it was
    reader.rollback()

    again = ingest(published_once, tmp_path, export, "delta.csv")  # the retry, once the read is over

    assert (again.outcome, again.version) == ("published", 2)


def test_a_release_that_cannot_lock_the_current_version_is_refused_and_changes_nothing(
    published_once: Engine, reader: Connection, tmp_path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generations, "CONVERSION_LOCK_TIMEOUT", "200ms")
    body = csv_bytes([f"{lines[0]},_op", f"{moved(lines[1])},U", f"{moved(lines[1], '江岭社区')},U"])
    quarantined = ingest(published_once, tmp_path, body, "twice.csv")  # the key twice: the unique key rule
    assert quarantined.outcome == "quarantined"

    with pytest.raises(ReleaseMustWait, match="try the release again"), session_scope(published_once) as session:
        release_batch(session, quarantined.batch_id, "ops:wang", "checked with the department")

    with session_scope(published_once) as session:
        batch = session.get_one(IngestBatch, quarantined.batch_id)
        assert batch.outcome == "quarantined" and current_version(session, POPULATION).number == 1  # type: ignore[union-attr]


# --- B: a released delta whose keys repeat: the last row of each key, in the export's order -------------------------


def released(session: Session, tmp_path: Path, header: str, rows: list[str]) -> IngestOutcome:
    quarantined = run(session, tmp_path, POPULATION, csv_bytes([f"{header},_op", *rows]), "repeated.csv")
    assert quarantined.outcome == "quarantined"
    assert "unique key" in str(session.get_one(IngestBatch, quarantined.batch_id).report)  # the normal path's rule
    return release_batch(session, quarantined.batch_id, "ops:wang", "the department's change log, as it is")


def keys_of(session: Session, number: int) -> list[str]:
    version = session.scalar(select(ItemVersion).where(ItemVersion.number == number))
    assert version is not None
    return [str(row[0]) for row in session.execute(text(f'SELECT "f1" FROM "{version.table_name}"')).all()]


def test_a_released_insert_then_delete_of_one_key_leaves_it_deleted(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    present, absent = lines[1], newcomers[0]
    rows = [f"{moved(present)},I", f"{key(present)},,,,,,,,D", f"{absent},I", f"{key(absent)},,,,,,,,D"]

    outcome = released(incremental, tmp_path, lines[0], rows)

    assert (outcome.outcome, outcome.version, outcome.rows_accepted, outcome.rows_rejected) == ("released", 2, 4, 0)
    assert outcome.changes is not None
    counts = ("inserted", "updated", "deleted", "deletes_absent", "superseded")
    assert [outcome.changes[name] for name in counts] == [0, 0, 1, 1, 2]
    stored = keys_of(incremental, 2)
    assert len(stored) == len(set(stored)) == 499 and key(present) not in stored and key(absent) not in stored
    assert current_version(incremental, POPULATION).row_count == 499  # type: ignore[union-attr]
    assert published(incremental, 1)[key(present)] == tuple(cell or "None" for cell in present.split(",")[1:])


def test_a_released_delta_applies_the_last_row_of_each_key_in_export_order(
    incremental: Session, tmp_path: Path, lines: list[str], newcomers: list[str]
) -> None:
    run(incremental, tmp_path, POPULATION, csv_bytes(lines))
    gone_then_back, twice = lines[2], lines[3]
    rows = [f"{key(gone_then_back)},,,,,,,,D", f"{moved(gone_then_back)},I", f"{moved(twice)},U",
            f"{moved(twice, '江岭社区')},U", f"{newcomers[0]},I", f"{moved(newcomers[0])},U"]  # fmt: skip

    outcome = released(incremental, tmp_path, lines[0], rows)

    assert outcome.changes is not None
    assert (outcome.changes["inserted"], outcome.changes["updated"], outcome.changes["deleted"]) == (1, 2, 0)
    assert outcome.changes["superseded"] == 3
    stored = keys_of(incremental, 2)
    assert len(stored) == len(set(stored)) == 501
    after = published(incremental, 2)
    assert after[key(gone_then_back)][5] == "碧岭社区" and after[key(twice)][5] == "江岭社区"
    assert after[key(newcomers[0])][5] == "碧岭社区"
