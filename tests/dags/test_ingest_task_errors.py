"""The ingestion task's answer to each kind of trouble: a refusal or an export in quarantine fails it without
retries (retrying would change nothing); an unexpected error propagates, so Airflow retries it."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from catalog.cli import app
from catalog.db import make_engine, session_scope
from catalog.ingest.publish import VersionWriter
from catalog.items.models import CatalogItem
from catalog.settings import get_settings
from tests.dags.conftest import DAGS

POPULATION = "PSGA-RK-0001"
RESIDENT_ID = "440307195307144048"


@pytest.fixture
def task(
    backend: str, database_factory: Any, samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The DAG file's module on the demo platform, with the task context Airflow would give."""
    monkeypatch.setenv("DATASHARE_DATABASE_URL", database_factory(backend, migrate=False))
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["demo", "--samples", str(samples_dir)])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location("ingest_items_under_test", DAGS / "ingest_items.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = {"dag": SimpleNamespace(dag_id="ingest_psga_rk_0001"), "run_id": "manual__1"}
    monkeypatch.setattr(module, "get_current_context", lambda: context)
    yield module
    get_settings.cache_clear()


def set_status(status: str) -> None:
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        session.execute(update(CatalogItem).where(CatalogItem.code == POPULATION).values(status=status))
    engine.dispose()


def test_an_item_that_is_not_published_fails_the_task_without_retries(task: ModuleType) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    set_status("retired")
    with pytest.raises(AirflowFailException, match="is retired, not published"):
        task.pull_and_ingest(POPULATION)


def test_an_unexpected_error_propagates_for_a_retry_which_publishes(
    task: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def database_gone(self: VersionWriter) -> None:
        raise ConnectionError(f"the database went away while writing {RESIDENT_ID!r}")

    working = VersionWriter.finish
    monkeypatch.setattr(VersionWriter, "finish", database_gone)
    with caplog.at_level(logging.ERROR), pytest.raises(task.IngestFailed) as failed:
        task.pull_and_ingest(POPULATION)
    assert "ConnectionError: the database went away while writing *" in str(failed.value)
    assert caplog.text.count("Traceback") == 1 and "ConnectionError" in caplog.text  # logged once, by the service
    assert RESIDENT_ID not in caplog.text + str(failed.value)
    monkeypatch.setattr(VersionWriter, "finish", working)
    assert task.pull_and_ingest(POPULATION)["outcome"] == "published"


def test_an_export_in_quarantine_fails_the_task_on_every_run(task: ModuleType, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    drop = next((tmp_path / "data").rglob("psga_population_*.csv")).parent
    (drop / "psga_population_20991231.csv").write_text("公民身份号码,姓名\n440307195307144048,陈华\n", encoding="utf-8")
    with pytest.raises(AirflowFailException, match="quarantined"):
        task.pull_and_ingest(POPULATION)
    with pytest.raises(AirflowFailException, match=r"already ingested as batch 1 \(quarantined\)"):
        task.pull_and_ingest(POPULATION)
