"""The production topology of docker/compose.yaml, run natively with the same commands and settings: PostgreSQL (the
platform's database and Airflow's metadata, each its own), Redis as the Celery broker, Airflow's api-server,
scheduler, dag-processor and triggerer, and two Celery workers running the platform's DAGs.

Twenty items are registered and an export dropped for each; the scheduler runs their pipelines once they are
unpaused, as an operator would. Then one worker is killed (SIGKILL, with everything it started) while it runs a large
ingest: Airflow finds the task without a heartbeat, retries it on the other worker, and the item is published once;
meanwhile nothing half-published is ever visible."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select, text

from catalog.db import make_engine, session_scope
from catalog.declarations.service import import_catalog, parse_catalog_text
from catalog.ingest.exports import export_at
from catalog.ingest.manifest import refresh_manifest
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.items.models import CatalogItem
from tests.topology.cluster import Cluster, cluster, wait_for

pytestmark = pytest.mark.slow

ITEMS = 20
BIG_ROWS = 400_000
FIELDS = [
    {"name": "记录编号", "data_type": "integer", "key": True, "semantic_type": "identifier", "level": 1},
    {"name": "名称", "level": 1},
    {"name": "数量", "data_type": "integer", "minimum": "0", "level": 1},
    {"name": "登记日期", "data_type": "date", "level": 1},
]


def item_code(number: int) -> str:
    return f"TOPO-{number:04d}"


def catalog_text() -> str:
    systems = [
        {"code": f"s{n:02d}", "name": f"业务系统{n}", "access": "file_drop", "location": f"drop/topo/s{n:02d}",
         "file_pattern": "export_*.csv", "format": "csv", "encoding": "utf-8"}
        for n in range(1, ITEMS + 1)
    ]  # fmt: skip
    items = [
        {"code": item_code(n), "title": f"拓扑测试数据{n}", "department": "topo", "source_system": f"s{n:02d}",
         "update_frequency": "@daily", "sharing_type": "conditional", "status": "published", "fields": FIELDS}
        for n in range(1, ITEMS + 1)
    ]  # fmt: skip
    department = {"code": "topo", "name_zh": "拓扑测试部门", "name_en": "Topology", "kind": "district_unit",
                  "source_systems": systems}  # fmt: skip
    return yaml.safe_dump({"version": 1, "departments": [department], "items": items}, allow_unicode=True)


def write_export(folder: Path, name: str, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w", encoding="utf-8") as out:
        out.write("记录编号,名称,数量,登记日期\n")
        out.writelines(f"{n},名称{n % 977},{n % 1000},2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}\n" for n in
                       range(1, rows + 1))  # fmt: skip
    return path


def prepare(topology: Cluster) -> None:
    """The catalog and an export per item, as an officer's import and the departments' systems leave them."""
    engine = make_engine(topology.platform_url)
    try:
        with session_scope(engine) as session:
            import_catalog(session, parse_catalog_text(catalog_text()), actor="topology:officer", by_officer=True)
        refresh_manifest(engine, topology.site.data_dir / "pipelines.json")
    finally:
        engine.dispose()
    for n in range(1, ITEMS + 1):
        write_export(topology.site.data_dir / "drop" / "topo" / f"s{n:02d}", "export_20261201.csv", 50 + n)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("topology"), prepare) as running:
        yield running


@pytest.fixture(scope="module")
def platform(topology: Cluster) -> Iterator[Engine]:
    engine = make_engine(topology.platform_url)
    yield engine
    engine.dispose()


def dag_id(number: int) -> str:
    return f"ingest_topo_{number:04d}"


def published_items(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(CatalogItem.code, ItemVersion.row_count).join(
                ItemVersion, ItemVersion.id == CatalogItem.current_version_id
            )
        ).all()
    return {code: count for code, count in rows}


def asset_events(client: Any) -> dict[str, int]:
    """Asset events per item, as Airflow recorded them."""
    events = client.get("/assets/events", params={"limit": 1000}).raise_for_status().json()["asset_events"]
    counts: dict[str, int] = {}
    for event in events:
        code = event["uri"].rsplit("/", 1)[-1]
        counts[code] = counts.get(code, 0) + 1
    return counts


def test_the_topology_runs_every_pipeline_and_survives_a_lost_worker(topology: Cluster, platform: Engine) -> None:
    """One test, as the second part needs the first's outcome (and xdist may split a module's tests)."""
    every_pipeline_runs_on_both_workers(topology, platform)
    a_worker_killed_mid_ingest_is_retried_on_the_other_and_publishes_once(topology, platform)


def every_pipeline_runs_on_both_workers(topology: Cluster, platform: Engine) -> None:
    with topology.client() as client:
        ids = [dag_id(n) for n in range(1, ITEMS + 1)]

        def parsed() -> bool:
            found = client.get("/dags", params={"dag_id_pattern": "ingest_topo", "limit": 100}).json()
            return {dag["dag_id"] for dag in found.get("dags", [])} >= set(ids)

        wait_for("the dag-processor to parse the 20 pipelines", parsed, topology, timeout=180)
        for dag in ids:  # paused at creation in production: ops unpause them; each runs its latest interval at once
            client.patch(f"/dags/{dag}", json={"is_paused": False}).raise_for_status()

        wait_for("every item to be published", lambda: len(published_items(platform)) == ITEMS, topology, timeout=420,
                 every=3)  # fmt: skip
        assert published_items(platform) == {item_code(n): 50 + n for n in range(1, ITEMS + 1)}
        every_item = {item_code(n): 1 for n in range(1, ITEMS + 1)}
        wait_for("an Asset event per item", lambda: asset_events(client) == every_item, topology, timeout=60)
    totals = topology.celery_totals()
    assert set(totals) == {"worker1", "worker2"} and all(totals.values()), totals


class PublicationWatch(threading.Thread):
    """Polls the platform database as a reader would, recording anything half-published it ever sees: a current
    version whose table does not hold the rows its version row says, or a version table that holds none."""

    def __init__(self, engine: Engine, code: str) -> None:
        super().__init__(daemon=True)
        self.engine, self.code = engine, code
        self.seen: set[tuple[int, int]] = set()
        self.problems: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            try:
                self.look()
            except Exception as error:  # a reader's failure is itself a finding
                self.problems.append(f"reading failed: {error}")

    def look(self) -> None:
        with self.engine.connect() as connection:
            current = connection.execute(
                select(ItemVersion.number, ItemVersion.table_name, ItemVersion.row_count)
                .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
                .where(CatalogItem.code == self.code)
            ).one()
            held = connection.scalar(text(f'SELECT count(*) FROM "{current.table_name}"'))
        if held != current.row_count:
            self.problems.append(f"version {current.number} says {current.row_count} rows, its table holds {held}")
        self.seen.add((current.number, current.row_count))


def running_batch(engine: Engine, code: str, sha256: str) -> IngestBatch | None:
    with session_scope(engine) as session:
        batch = session.scalar(
            select(IngestBatch).join(RawExport).where(RawExport.sha256 == sha256, IngestBatch.outcome == "running")
        )
        if batch is not None:
            session.expunge(batch)
        return batch


def loading(engine: Engine, code: str) -> bool:
    """A session of another process is inside a transaction that has written the item's next version table (its
    latest statement names it): the kill then lands mid-publication."""
    with engine.connect() as connection:
        item_id = connection.scalar(select(CatalogItem.id).where(CatalogItem.code == code))
        return bool(connection.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                 "AND backend_xid IS NOT NULL AND query LIKE :table"), {"table": f'%item_{item_id}_v2%'}
        ))  # fmt: skip


def worker_of(topology: Cluster, pid: int) -> str:
    """The worker whose process tree runs this pid."""
    for name, process in topology.processes.items():
        if name.startswith("worker") and pid in {child.pid for child in process.children(recursive=True)}:
            return name
    raise AssertionError(f"pid {pid} is not run by a worker")


def a_worker_killed_mid_ingest_is_retried_on_the_other_and_publishes_once(topology: Cluster, platform: Engine) -> None:
    code, folder = item_code(1), topology.site.data_dir / "drop" / "topo" / "s01"
    digest = export_at(write_export(folder, "export_20261202.csv", BIG_ROWS)).sha256
    watch = PublicationWatch(platform, code)
    watch.start()
    with topology.client("ops") as client:
        before = topology.celery_totals()
        client.post(f"/dags/{dag_id(1)}/dagRuns", json={"logical_date": None}).raise_for_status()
        batch = wait_for("the large ingest to be running", lambda: running_batch(platform, code, digest), topology,
                         timeout=180, every=0.2)  # fmt: skip
        wait_for("its version table to be loading", lambda: loading(platform, code), topology, timeout=60, every=0.05)
        victim = worker_of(topology, batch.pid)
        survivor = next(name for name in ("worker1", "worker2") if name != victim)
        topology.kill(victim)
        del topology.processes[victim]

        wait_for("the retry to publish the large export", lambda: published_items(platform)[code] == BIG_ROWS,
                 topology, timeout=300, every=2)  # fmt: skip
        watch.stopping.set()
        watch.join()
        events = asset_events(client)
        runs = client.get(f"/dags/{dag_id(1)}/dagRuns", params={"order_by": "-start_date", "limit": 1}).json()
        run_id = runs["dag_runs"][0]["dag_run_id"]
        task = client.get(f"/dags/{dag_id(1)}/dagRuns/{run_id}/taskInstances/ingest").raise_for_status().json()
    assert watch.problems == []
    assert watch.seen <= {(1, 51), (2, BIG_ROWS)}, watch.seen  # only whole versions were ever current
    with session_scope(platform) as session:
        batches = session.execute(
            select(IngestBatch.id, IngestBatch.outcome).join(RawExport).where(RawExport.sha256 == digest)
            .order_by(IngestBatch.id)
        ).all()  # fmt: skip
        versions = session.scalar(
            select(func.count()).select_from(ItemVersion).join(CatalogItem, CatalogItem.id == ItemVersion.item_id)
            .where(CatalogItem.code == code)
        )  # fmt: skip
    assert [outcome for _, outcome in batches] == ["interrupted", "published"], batches
    assert batches[0][0] == batch.id  # the killed run published nothing
    assert versions == 2  # the first export's and the large one's, once
    assert events[code] == 2
    assert task["state"] == "success" and task["try_number"] >= 2, task
    after = topology.celery_totals()
    assert set(after) == {survivor} and after[survivor] > before[survivor], (before, after)
