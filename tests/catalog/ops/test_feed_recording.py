"""The ingestion path records each item's feed in the transaction of each outcome, on both backends: an export
received (published, quarantined, or the same export again), a version published (by a run or a release), and every
pull checked, the ones that find no export and the ones that fail included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from catalog.db import session_scope
from catalog.ingest.publish import VersionWriter
from catalog.ingest.quarantine import release_batch
from catalog.ingest.runner import pull_and_ingest
from catalog.ingest.service import IngestOutcome, ingest_export, run_ingest
from catalog.items.models import CatalogItem
from catalog.ops.models import ItemFeed
from catalog.settings import Settings
from tests.catalog.ingest.conftest import platform  # noqa: F401  (a fixture: the demo catalog committed)

POPULATION = "PSGA-RK-0001"
FIRST, SECOND = "psga_population_20261120.csv", "psga_population_20261121.csv"


@dataclass(frozen=True)
class Feed:
    last_received_at: datetime | None
    last_published_at: datetime | None
    last_checked_at: datetime | None
    last_check_outcome: str | None


def feed(session: Session, code: str = POPULATION) -> Feed | None:
    """The item's feed row as it is now (values, not the session's object)."""
    columns = (ItemFeed.last_received_at, ItemFeed.last_published_at, ItemFeed.last_checked_at,
               ItemFeed.last_check_outcome)  # fmt: skip
    statement = select(*columns).join(CatalogItem, CatalogItem.id == ItemFeed.item_id).where(CatalogItem.code == code)
    row = session.execute(statement).one_or_none()
    return None if row is None else Feed(*row)


def ingest(session: Session, tmp_path: Path, data: bytes, name: str) -> IngestOutcome:
    return ingest_export(session, POPULATION, data, name, raw_dir=tmp_path / "raw", trigger="test")


def test_published_duplicate_and_quarantined_exports_are_received(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    assert feed(demo) is None
    assert ingest(demo, tmp_path, (samples_dir / FIRST).read_bytes(), FIRST).outcome == "published"
    published = feed(demo)
    assert published is not None and published.last_check_outcome == "published"
    assert published.last_received_at == published.last_published_at == published.last_checked_at is not None
    first_publication = published.last_published_at

    assert ingest(demo, tmp_path, (samples_dir / FIRST).read_bytes(), FIRST).outcome == "duplicate"
    unchanged = feed(demo)  # the file already taken, still in the drop folder: checked, not delivered again
    assert unchanged is not None and unchanged.last_check_outcome == "unchanged"
    assert unchanged.last_received_at == first_publication and unchanged.last_checked_at > first_publication  # type: ignore[operator]

    resent = "psga_population_20261121_resent.csv"  # the same bytes sent again under a new name: delivered
    assert ingest(demo, tmp_path, (samples_dir / FIRST).read_bytes(), resent).outcome == "duplicate"
    duplicate = feed(demo)
    assert duplicate is not None and duplicate.last_check_outcome == "duplicate"
    assert duplicate.last_received_at > first_publication  # type: ignore[operator]  # the same export: received
    assert duplicate.last_published_at == first_publication and duplicate.last_checked_at == duplicate.last_received_at

    lines = (samples_dir / SECOND).read_text(encoding="utf-8-sig").splitlines()
    shrunk = ("\n".join(lines[:101]) + "\n").encode()  # 100 rows after 500: a volume drop
    quarantined_outcome = ingest(demo, tmp_path, shrunk, "psga_population_20261122.csv")
    assert quarantined_outcome.outcome == "quarantined"
    quarantined = feed(demo)
    assert quarantined is not None and quarantined.last_check_outcome == "quarantined"
    assert quarantined.last_received_at > duplicate.last_received_at  # type: ignore[operator]
    assert quarantined.last_published_at == first_publication

    release_batch(demo, quarantined_outcome.batch_id, "ops:wang", "the district shrank")
    released = feed(demo)
    assert released is not None and released.last_published_at > quarantined.last_received_at  # type: ignore[operator]
    assert (released.last_checked_at, released.last_check_outcome) == (quarantined.last_checked_at, "quarantined")


def test_a_pull_that_finds_no_export_is_a_check_and_receives_nothing(platform: Engine, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    (settings.resolved_drop_dir / "psga" / "population").mkdir(parents=True)  # an empty drop folder

    assert pull_and_ingest(platform, settings, POPULATION, trigger="test") is None

    with session_scope(platform) as session:
        checked = feed(session)
        assert checked is not None and checked.last_check_outcome == "no_export"
        assert checked.last_checked_at is not None
        assert (checked.last_received_at, checked.last_published_at) == (None, None)


def test_a_failed_run_is_a_check_that_receives_nothing(
    platform: Engine,  # noqa: F811
    tmp_path: Path,
    samples_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def lost_connection(self: VersionWriter) -> None:
        raise RuntimeError("server closed the connection")

    monkeypatch.setattr(VersionWriter, "finish", lost_connection)
    with pytest.raises(RuntimeError):
        run_ingest(platform, POPULATION, (samples_dir / FIRST).read_bytes(), FIRST, raw_dir=tmp_path / "raw",
                   reports_dir=tmp_path / "reports", trigger="test")  # fmt: skip

    with session_scope(platform) as session:
        failed = feed(session)
        assert failed is not None and (failed.last_check_outcome, failed.last_received_at) == ("failed", None)


def test_an_export_processed_in_a_transaction_that_rolls_back_records_nothing(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    with pytest.raises(RuntimeError), demo.begin_nested():
        ingest(demo, tmp_path, (samples_dir / FIRST).read_bytes(), FIRST)
        raise RuntimeError("the caller's transaction fails after the outcome")
    assert feed(demo) is None
