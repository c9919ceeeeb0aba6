"""The metrics directory ``python -m api.serve --workers N`` empties at start: only prometheus-client's own files go,
and a directory that holds the data folder or the SQLite database is refused before anything is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.serve import prepare_metrics_dir
from catalog.settings import get_settings

EARLIER_SERVERS = ["counter_11.db", "gauge_livesum_12.db", "gauge_all_12.db", "histogram_13.db", "summary_14.db"]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Settings from this test's environment only; prometheus-client's variable restored afterwards."""
    for variable in ("DATASHARE_DATABASE_URL", "DATASHARE_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATASHARE_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_only_prometheus_clients_files_are_removed(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in [*EARLIER_SERVERS, "catalog.db", "notes.txt"]:
        (metrics / name).write_bytes(b"x")
    environment.setenv("DATASHARE_METRICS_DIR", str(metrics))

    assert prepare_metrics_dir() == metrics.resolve()

    assert sorted(path.name for path in metrics.iterdir()) == ["catalog.db", "notes.txt"]


@pytest.mark.parametrize("where", ["the data folder", "a folder above it"])
def test_the_data_folder_is_refused_and_left_as_it_was(
    environment: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o750)
    (data / "datashare.db").write_bytes(b"the platform's database")
    (data / "counter_11.db").write_bytes(b"x")
    environment.setenv("DATASHARE_METRICS_DIR", str(data if where == "the data folder" else tmp_path))

    with pytest.raises(SystemExit, match="holds the data folder or the database"):
        prepare_metrics_dir()

    assert sorted(path.name for path in data.iterdir()) == ["counter_11.db", "datashare.db"]
    assert data.stat().st_mode & 0o777 == 0o750


def test_a_folder_holding_the_sqlite_database_is_refused(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "catalog.db").write_bytes(b"the platform's database")
    environment.setenv("DATASHARE_DATABASE_URL", f"sqlite:///{shared / 'catalog.db'}")
    environment.setenv("DATASHARE_METRICS_DIR", str(shared))

    with pytest.raises(SystemExit, match="holds the data folder or the database"):
        prepare_metrics_dir()

    assert (shared / "catalog.db").exists()
