"""The pipelines with everything several machines share on object storage (issue 16), against a real S3-compatible
server (SeaweedFS): the DAG files read the pipeline manifest from the bucket when parsed (one small GET, nothing heavy
imported); an export dropped into the s3:// drop folder is pulled, kept raw on s3:// and published by a real run of
its ingestion DAG, and the version reaches an s3:// file drop through the delivery DAG. Inside the tasks the
credentials come from the Airflow connection DATASHARE_OBJECT_STORE_CONN_ID names, with none in their environment."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from catalog.access.service import Principal
from catalog.cli import app
from catalog.db import make_engine, session_scope
from catalog.ingest.models import IngestBatch, RawExport
from catalog.push import targets
from catalog.push.models import PushDelivery
from catalog.settings import get_settings
from catalog.subscriptions import service as subscriptions
from catalog.subscriptions.scopes import Scope
from catalog.subscriptions.service import Rules, SubscriptionCreate
from tests.dags.test_ingest_items import dagbag
from tests.dags.test_manifest_location import ENTRY, parse
from tests.object_store import ObjectStore, objects_under

ITEM = "PSGA-RK-0001"
RULES = Rules(auto_approve_max_level=2, officer_level=3, max_days=366)
CONSUMER, PROVIDER = Principal("user:zsj-steward", "zsj"), Principal("user:psga-steward", "psga")
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3")
PARSE_TIME_MODULES = ("catalog.settings", "catalog.ingest", "catalog.ingest.assets", "catalog.storage")


def test_the_dag_file_reads_the_manifest_from_object_storage(
    s3_bucket: str, object_store: ObjectStore, tmp_path: Path
) -> None:
    url = f"{s3_bucket}/platform/pipelines.json"
    object_store.filesystem().pipe_file(url.removeprefix("s3://"), json.dumps({"pipelines": [ENTRY]}).encode())

    started = time.monotonic()
    result = parse(tmp_path, DATASHARE_MANIFEST_URL=url)
    seconds = time.monotonic() - started

    assert result.stdout.splitlines() == [url, "['PSGA-RK-0001']"]
    assert seconds < 30, f"parsing took {seconds:.1f} s"


def test_parsing_with_the_manifest_on_object_storage_imports_nothing_heavy(
    s3_bucket: str, object_store: ObjectStore, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from tests.dags.conftest import DAGS

    url = f"{s3_bucket}/pipelines.json"
    object_store.filesystem().pipe_file(url.removeprefix("s3://"), json.dumps({"pipelines": [ENTRY]}).encode())
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pandas', 'great_expectations', 'psycopg') if m in sys.modules]; "
        f"heavy += [m for m in sys.modules if m.startswith('catalog.') and m not in {PARSE_TIME_MODULES}]; "
        "print(heavy)"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DATASHARE_")}, "DATASHARE_MANIFEST_URL": url}
    result = subprocess.run([sys.executable, "-c", code, str(DAGS / "ingest_items.py")], capture_output=True,
                            text=True, check=True, env=env, cwd=tmp_path)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def platform(
    backend: str, database_factory: Any, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The demo platform with its raw store, drop area, manifest and file-drop root in the bucket."""
    url = database_factory(backend, migrate=False)
    for name, value in {
        "DATASHARE_DATABASE_URL": url,
        "DATASHARE_DATA_DIR": str(tmp_path / "data"),
        "DATASHARE_RAW_URL": f"{s3_bucket}/raw",
        "DATASHARE_DROP_URL": f"{s3_bucket}/drop",
        "DATASHARE_MANIFEST_URL": f"{s3_bucket}/pipelines.json",
        "DATASHARE_DELIVERY_FILE_ROOTS": json.dumps([f"{s3_bucket}/outbound"]),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["demo", "--samples", str(tmp_path / "no-samples")])
    assert result.exit_code == 0, result.output
    yield url
    get_settings.cache_clear()


def credentials_only_in_a_connection(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker has: no keys in its environment, an Airflow connection (here from AIRFLOW_CONN_<ID>)."""
    import s3fs

    for name in AWS_KEYS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_CONN_DATASHARE_S3", store.airflow_connection())
    monkeypatch.setenv("DATASHARE_OBJECT_STORE_CONN_ID", "datashare_s3")
    get_settings.cache_clear()
    s3fs.S3FileSystem.clear_instance_cache()


def test_an_export_in_an_s3_drop_folder_is_published_and_delivered_by_real_dag_runs(
    platform: str,
    airflow_db: Path,
    s3_bucket: str,
    object_store: ObjectStore,
    samples_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    export = (samples_dir / "psga_population_20261121.csv").read_bytes()
    drop = f"{s3_bucket}/drop/psga/population"
    object_store.filesystem().pipe_file(f"{drop}/psga_population_20261121.csv".removeprefix("s3://"), export)
    bag = dagbag()  # the dag-processor: the manifest read from the bucket with the environment's keys
    assert bag.import_errors == {} and "ingest_psga_rk_0001" in bag.dag_ids
    credentials_only_in_a_connection(object_store, monkeypatch)

    run = bag.get_dag("ingest_psga_rk_0001").test()

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"ingest": "success", "decide": "skipped"}, (states, caplog.text[-3000:])
    engine = make_engine(platform)
    with session_scope(engine) as session:
        batch = session.scalars(select(IngestBatch)).one()
        stored = session.scalars(select(RawExport.stored_path)).one()
    assert (batch.outcome, batch.rows_accepted) == ("published", 520)
    assert objects_under(object_store, f"{s3_bucket}/raw") == {stored: export}
    assert stored.startswith(f"{s3_bucket}/raw/{ITEM}/")

    folder = f"{s3_bucket}/outbound/zsj"
    with session_scope(engine) as session:
        subscription = _scoped_subscription(session)
        target = targets.TargetCreate(name="street-files", kind="file", url=folder, file_format="parquet")
        targets.create(session, get_settings(), subscription, target, CONSUMER)

    delivered = bag.get_dag("deliver_psga_rk_0001").test()

    assert str(delivered.state) in ("success", "DagRunState.SUCCESS"), caplog.text[-3000:]
    files = objects_under(object_store, folder)
    assert list(files) == [f"{folder}/{ITEM}-v1.parquet"]  # whole, under its final name only
    table = pq.read_table(io.BytesIO(files[f"{folder}/{ITEM}-v1.parquet"]))
    assert set(table.column("所属社区").to_pylist()) == {"碧岭社区"}  # the scope
    assert all("*" in value for value in table.column("公民身份号码").to_pylist())  # masked
    with session_scope(engine) as session:
        assert session.execute(select(PushDelivery.status, PushDelivery.rows)).all() == [("delivered", table.num_rows)]
    engine.dispose()
    assert object_store.secret_key not in caplog.text


def _scoped_subscription(session: Any) -> int:
    body = SubscriptionCreate(item=ITEM, fields=["公民身份号码", "所属社区"], purpose="街道办核对辖区居民",
                              legal_basis="数据条例第四十条", period_days=30,
                              scope=Scope.model_validate({"所属社区": {"in": ["碧岭社区"]}}))  # fmt: skip
    subscription = subscriptions.request(session, RULES, body, CONSUMER).id
    subscriptions.approve(session, RULES, subscription, PROVIDER, as_officer=False)
    subscriptions.approve(session, RULES, subscription, Principal("user:officer", "psga"), as_officer=True, level=2)
    return int(subscription)
