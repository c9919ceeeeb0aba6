"""The platform's DAGs: integrity over Airflow's DagBag, real dag.test() runs of every sample export and of
the subscription expiry, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.cli import app
from catalog.db import make_engine, session_scope
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.items.models import CatalogItem
from catalog.settings import get_settings
from tests.dags.conftest import DAGS

EXPECTED_DAGS = ["ingest_psga_rk_0001", "ingest_scjg_fr_0001", "ingest_zsj_ms_0001"]
DELIVERY_DAGS = ["deliver_psga_rk_0001", "deliver_scjg_fr_0001", "deliver_zsj_ms_0001"]
OTHER_DAGS = ["announce_releases", "deliver_notifications", "expire_subscriptions", "notification_digest", "seal_audit",
              "watch_freshness"]  # fmt: skip
PARSE_TIME_MODULES = "('catalog.settings', 'catalog.ingest', 'catalog.ingest.assets')"  # settings, the items' Assets


@pytest.fixture
def platform(
    backend: str, database_factory: Any, samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The demo platform on a fresh database: catalog, drop folders, pipeline manifest."""
    url = database_factory(backend, migrate=False)
    monkeypatch.setenv("DATASHARE_DATABASE_URL", url)
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["demo", "--samples", str(samples_dir)])
    assert result.exit_code == 0, result.output
    yield url
    get_settings.cache_clear()


def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_every_dag_loads_with_retries_tags_and_docs(platform: str, airflow_db: Path) -> None:
    bag = dagbag()

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(EXPECTED_DAGS + DELIVERY_DAGS + OTHER_DAGS)
    for dag_id in bag.dag_ids:
        dag = bag.get_dag(dag_id)
        assert "datashare" in dag.tags and dag.doc_md
        assert dag.max_active_runs == 1 and not dag.catchup
        assert all(task.retries >= 1 for task in dag.tasks if task.task_id != "decide")
    for dag_id in EXPECTED_DAGS:
        dag = bag.get_dag(dag_id)
        assert "ingest" in dag.tags
        assert [task.task_id for task in dag.tasks] == ["ingest", "decide"]
        code = dag_id[7:].upper().replace("_", "-")
        assert [outlet.name for outlet in dag.get_task("ingest").outlets] == [f"datashare.item.{code}.versions"]
        decide = dag.get_task("decide")
        assert decide.retries == 0 and decide.options == ["Release", "Discard"] and "reason" in decide.params
        assert decide.upstream_task_ids == {"ingest"}
    assert bag.get_dag("ingest_psga_rk_0001").schedule == "0 2 * * *"  # the item's update frequency


def test_parsing_imports_nothing_heavy(platform: str) -> None:
    import subprocess
    import sys

    code = (  # of the platform, only its settings (where the manifest is)
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pandas', 'great_expectations', 'psycopg') if m in sys.modules]; "
        f"heavy += [m for m in sys.modules if m.startswith('catalog.') and m not in {PARSE_TIME_MODULES}]; "
        "print(heavy)"
    )
    for dag_file in sorted(DAGS.glob("*.py")):
        result = subprocess.run([sys.executable, "-c", code, str(dag_file)], capture_output=True, text=True, check=True)
        assert result.stdout.strip().splitlines()[-1] == "[]", dag_file.name


def test_without_a_manifest_there_are_no_ingestion_dags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path
) -> None:
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    bag = dagbag()
    get_settings.cache_clear()
    assert bag.import_errors == {} and sorted(bag.dag_ids) == sorted(OTHER_DAGS)


def test_every_sample_publishes_through_a_real_dag_run(platform: str, airflow_db: Path) -> None:
    bag = dagbag()
    before = asset_events()  # the Airflow database is shared by both backends' runs
    for dag_id in EXPECTED_DAGS:
        run = bag.get_dag(dag_id).test()
        assert str(run.state) in ("success", "DagRunState.SUCCESS"), dag_id
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert states == {"ingest": "success", "decide": "skipped"}, states

    engine = make_engine(platform)
    with session_scope(engine) as session:
        published = dict(
            session.execute(
                select(CatalogItem.code, ItemVersion.row_count).join(
                    ItemVersion, CatalogItem.current_version_id == ItemVersion.id
                )
            ).all()
        )
        triggers = list(session.scalars(select(IngestBatch.trigger)))
    engine.dispose()
    assert published == {"PSGA-RK-0001": 520, "SCJG-FR-0001": 300, "ZSJ-MS-0001": 400}
    assert all(trigger.startswith("airflow:ingest_") for trigger in triggers)

    assert new_events(before) == {f"datashare://items/{code}": 1 for code in published}
    assert latest_event_extra("SCJG-FR-0001") == {"item": "SCJG-FR-0001", "version": 1, "rows": 300, "batch": 2}

    again = bag.get_dag("ingest_scjg_fr_0001").test()  # the same export: nothing new, the asset is not updated
    states = {ti.task_id: str(ti.state) for ti in again.get_task_instances()}
    assert states == {"ingest": "skipped", "decide": "skipped"}, states
    assert new_events(before)["datashare://items/SCJG-FR-0001"] == 1


def new_events(before: dict[str, int]) -> dict[str, int]:
    return {uri: count - before.get(uri, 0) for uri, count in asset_events().items() if count > before.get(uri, 0)}


def latest_event_extra(item_code: str) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        extra = session.scalar(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == f"datashare://items/{item_code}")
            .order_by(AssetEvent.id.desc())
            .limit(1)
        )
    return dict(extra or {})


def asset_events() -> dict[str, int]:
    """Asset events per asset URI in Airflow's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, func.count(AssetEvent.id))
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .group_by(AssetModel.uri)
        ).all()
    return {uri: count for uri, count in rows}


def test_the_expiry_dag_ends_subscriptions_whose_period_is_over(platform: str, airflow_db: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from catalog.access.service import Principal
    from catalog.db import utcnow
    from catalog.subscriptions import service
    from catalog.subscriptions.models import Subscription

    rules = service.Rules(2, 3, 366)
    request = service.SubscriptionCreate(
        item="SCJG-FR-0001", fields=["企业名称"], purpose="核对企业信息", legal_basis="数据条例", period_days=30
    )
    engine = make_engine(platform)
    with session_scope(engine) as session:
        created = service.request(session, rules, request, Principal("user:tester", "zsj"))
        session.execute(
            update(Subscription).where(Subscription.id == created.id).values(expires_at=utcnow() - timedelta(minutes=1))
        )

    run = dagbag().get_dag("expire_subscriptions").test()

    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    with session_scope(engine) as session:
        assert service.read(session, rules, created.id).status is service.SubscriptionStatus.EXPIRED
    engine.dispose()
