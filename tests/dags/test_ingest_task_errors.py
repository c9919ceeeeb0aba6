"""The ingestion task's answer to each kind of trouble: a refusal or an export in quarantine fails it without
retries (retrying would change nothing); an unexpected error propagates, so Airflow retries it."""

from __future__ import annotations

import importlib.util
import logging
from collections import defaultdict
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
    context = {"dag": SimpleNamespace(dag_id="ingest_psga_rk_0001"), "run_id": "manual__1",
               "outlet_events": defaultdict(AnnouncedEvents)}  # fmt: skip
    monkeypatch.setattr(module, "get_current_context", lambda: context)
    yield module
    get_settings.cache_clear()


class AnnouncedEvents(list[tuple[Any, dict[str, Any]]]):
    """What a task adds to an outlet's events (Airflow's outlet_events accessor)."""

    def add(self, asset: Any, extra: dict[str, Any]) -> None:
        self.append((asset, extra))


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
    published = task.pull_and_ingest(POPULATION)
    assert published["outcome"] == "published" and published["summary"].startswith("PUBLISHED PSGA-RK-0001 version 1 ")
    [(asset, extra)] = task.get_current_context()["outlet_events"][task.versions_alias(POPULATION)]
    assert asset.uri == "datashare://items/PSGA-RK-0001"
    assert extra == {"item": POPULATION, "version": 1, "rows": published["rows"], "batch": 2}


def test_an_export_in_quarantine_asks_for_a_decision_then_fails_the_runs_after(
    task: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    drop = next((tmp_path / "data").rglob("psga_population_*.csv")).parent
    (drop / "psga_population_20991231.csv").write_text("公民身份号码,姓名\n440307195307144048,陈华\n", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        first = task.pull_and_ingest(POPULATION)  # succeeds without an Asset event: the decide task asks
    assert first["outcome"] == "quarantined" and first["batch"] == 1 and first["version"] is None
    assert caplog.records[0].getMessage().startswith("QUARANTINED PSGA-RK-0001 batch 1: ")
    assert RESIDENT_ID not in caplog.text
    with pytest.raises(AirflowFailException, match=r"AWAITS A DECISION PSGA-RK-0001: .* batch 1, still quarantined"):
        task.pull_and_ingest(POPULATION)


def received_days_ago(days: int) -> None:
    from datetime import timedelta

    from catalog.db import utcnow
    from catalog.ops.models import ItemFeed

    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        item_id = select_item_id(session)
        session.execute(
            update(ItemFeed).where(ItemFeed.item_id == item_id).values(last_received_at=utcnow() - timedelta(days=days))
        )
    engine.dispose()


def select_item_id(session: Any) -> int:
    from sqlalchemy import select

    return int(session.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION)))


def test_no_new_export_skips_while_none_is_due_waits_when_due_and_fails_when_late(
    task: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSkipException

    import catalog.ingest.task as task_module
    from catalog.db import utcnow

    task.pull_and_ingest(POPULATION)  # publishes the newest export
    caplog.clear()
    with caplog.at_level(logging.INFO), pytest.raises(AirflowSkipException, match="NO NEW EXPORT PSGA-RK-0001: "):
        task.pull_and_ingest(POPULATION)  # the same export again, the next not due before tomorrow's 02:00
    assert "nothing is late" in caplog.records[0].getMessage()

    real = task_module.freshness_of

    def due_a_minute_ago(*args: Any, **kwargs: Any) -> Any:  # an export due within the grace
        feed = real(*args, **kwargs)
        return replace(feed, due_at=feed.as_of - timedelta(minutes=1))

    monkeypatch.setattr(task_module, "freshness_of", due_a_minute_ago)
    with pytest.raises(AirflowRescheduleException) as waiting:
        task.pull_and_ingest(POPULATION)
    assert timedelta(minutes=4) < waiting.value.reschedule_date - utcnow() <= timedelta(minutes=5)
    monkeypatch.setattr(task_module, "freshness_of", real)

    received_days_ago(3)  # a daily export missed three times: overdue, and the run is red
    with pytest.raises(AirflowFailException, match=r"LATE PSGA-RK-0001: no new export .* \(overdue\)"):
        task.pull_and_ingest(POPULATION)
