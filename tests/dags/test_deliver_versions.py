"""The delivery DAGs: one per item, scheduled on the item's Asset (which a version published outside Airflow gets from
announce_releases); a real run sends the current version to a target
of an active subscription (here a Parquet file drop, masked and scoped as the subscription reads), once, on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select

from catalog.access.service import Principal
from catalog.db import make_engine, session_scope
from catalog.ingest.service import ingest_export
from catalog.push import targets
from catalog.push.models import PushDelivery
from catalog.settings import get_settings
from catalog.subscriptions import service as subscriptions
from catalog.subscriptions.scopes import Scope
from catalog.subscriptions.service import Rules, SubscriptionCreate
from tests.dags.test_ingest_items import asset_events, dagbag, new_events
from tests.dags.test_ingest_items import platform as platform  # a fixture

RULES = Rules(auto_approve_max_level=2, officer_level=3, max_days=366)
ITEM = "PSGA-RK-0001"
CONSUMER, PROVIDER = Principal("user:zsj-steward", "zsj"), Principal("user:psga-steward", "psga")


def test_a_published_version_reaches_a_file_drop_through_the_items_delivery_dag(
    platform: str,
    airflow_db: Path,
    samples_dir: Path,
    tmp_path: Path,
) -> None:
    dag = dagbag().get_dag("deliver_psga_rk_0001")
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == [f"datashare://items/{ITEM}"]
    settings = get_settings()
    folder = settings.resolved_delivery_dir / "zsj"
    engine = make_engine(platform)
    with session_scope(engine) as session:
        data = (samples_dir / "psga_population_20261121.csv").read_bytes()
        assert ingest_export(session, ITEM, data, "psga_population_20261121.csv", raw_dir=tmp_path,
                             trigger="test").outcome == "published"  # fmt: skip
        body = SubscriptionCreate(item=ITEM, fields=["公民身份号码", "所属社区"], purpose="街道办核对辖区居民",
                                  legal_basis="数据条例第四十条", period_days=30,
                                  scope=Scope.model_validate({"所属社区": {"in": ["碧岭社区"]}}))  # fmt: skip
        subscription = subscriptions.request(session, RULES, body, CONSUMER).id
        subscriptions.approve(session, RULES, subscription, PROVIDER, as_officer=False)  # level 3: an officer next
        subscriptions.approve(session, RULES, subscription, Principal("user:officer", "psga"), as_officer=True,
                              level=2)  # fmt: skip
        target = targets.TargetCreate(name="street-files", kind="file", url=f"file://{folder}", file_format="parquet")
        targets.create(session, settings, subscription, target, CONSUMER)

    before = asset_events()  # a version published outside Airflow is announced as the item's Asset event, once
    dagbag().get_dag("announce_releases").test()
    assert new_events(before).get(f"datashare://items/{ITEM}") == 1
    dagbag().get_dag("announce_releases").test()
    assert new_events(before).get(f"datashare://items/{ITEM}") == 1

    run = dag.test()
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
    table = pq.read_table(folder / f"{ITEM}-v1.parquet")
    assert set(table.column("所属社区").to_pylist()) == {"碧岭社区"}  # the scope
    assert all("*" in value for value in table.column("公民身份号码").to_pylist())  # level 3, approved at 2: masked
    with session_scope(engine) as session:
        records = session.execute(select(PushDelivery.status, PushDelivery.rows, PushDelivery.trigger)).all()
    assert [(status, rows) for status, rows, _ in records] == [("delivered", table.num_rows)]
    assert records[0][2].startswith("airflow:deliver_psga_rk_0001/")

    again = dag.test()  # delivered once: the next run has nothing to send
    assert str(again.state) in ("success", "DagRunState.SUCCESS")
    with session_scope(engine) as session:
        assert session.scalar(select(PushDelivery.attempts)) == 1
    engine.dispose()
