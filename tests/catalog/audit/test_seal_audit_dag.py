"""dags/seal_audit.py through Airflow: it loads from the DagBag cheaply, a real run seals and verifies, and a run
over a tampered trail fails, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.audit.models import AuditBlock, AuditEvent, AuditVerification
from catalog.audit.signing import platform_key
from catalog.db import make_engine, session_scope
from catalog.settings import get_settings
from tests.catalog.audit import helpers
from tests.dags.conftest import DAGS, airflow_db  # noqa: F401  (Airflow's home is set before Airflow is imported)

DAG_FILE = DAGS / "seal_audit.py"


@pytest.fixture
def platform(backend: str, database_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database with 25 audit events; the data folder (key, heads file) in tmp_path."""
    url = database_factory(backend)
    monkeypatch.setenv("DATASHARE_DATABASE_URL", url)
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    engine = make_engine(url)
    helpers.write_events(engine, 25)
    engine.dispose()
    yield url
    get_settings.cache_clear()


def seal_audit_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag("seal_audit")


def test_the_dag_parses_without_the_database_and_keeps_the_platform_conventions(airflow_db: Path) -> None:  # noqa: F811
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); print([m for m in ('catalog', 'psycopg') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"

    dag = seal_audit_dag()

    assert [task.task_id for task in dag.tasks] == ["seal", "verify"]
    assert dag.get_task("verify").upstream_task_ids == {"seal"}
    assert dag.schedule == "*/5 * * * *" and dag.max_active_runs == 1 and not dag.catchup
    assert "datashare" in dag.tags and dag.doc_md and all(task.retries >= 1 for task in dag.tasks)


def test_a_run_seals_and_verifies_and_a_tampered_trail_fails_the_run(platform: str, airflow_db: Path) -> None:  # noqa: F811
    dag = seal_audit_dag()
    dag.get_task("verify").retries = 0  # fail at once rather than after the retry delay

    run = dag.test()

    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    engine = make_engine(platform)
    with session_scope(engine) as session:
        last_id = session.scalar(select(func.max(AuditEvent.id)))
    assert [(b.first_id, b.last_id) for b in helpers.blocks(engine)] == [(1, last_id)]
    settings = get_settings()
    assert settings.resolved_audit_heads_file.read_text().count("\n") == 1
    key = platform_key(settings)

    helpers.change(engine, 7)
    failed = dag.test()

    assert str(failed.state) in ("failed", "DagRunState.FAILED")
    states = {ti.task_id: str(ti.state) for ti in failed.get_task_instances()}
    assert states == {"seal": "success", "verify": "failed"}, states
    with session_scope(engine) as session:
        results = list(session.scalars(select(AuditVerification).order_by(AuditVerification.id)))
        assert session.scalar(select(AuditBlock.public_key)) == key.public_key
    engine.dispose()
    assert [(r.ok, r.by) for r in results] == [(True, "airflow:seal_audit"), (False, "airflow:seal_audit")]
    assert results[1].failures[0]["kind"] == "row_changed" and results[1].failures[0]["audit_id"] == 7
