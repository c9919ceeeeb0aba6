"""How much of a run's record each reader sees: ops (who read every department's runs) see where it ran (host, process
id) and who ran it from the command line; a department's stewards see their runs without the host, the process id
or the operator's login (``cli:<login>`` reads ``cli``), in listings, the quarantine, a single report and the reason
an interrupted run gives."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.access import service as access
from catalog.db import make_engine, session_scope
from catalog.ingest.models import IngestBatch, RawExport
from catalog.items.models import CatalogItem
from tests.api.conftest import PASSWORD, bearer, login, status_of

POPULATION = "PSGA-RK-0001"
HOST, PID = "ingest-7.bureau.internal", 4242
TRIGGERS = {
    "quarantined": "cli:li.na",
    "published": "airflow:ingest_items/scheduled__2026-11-30",
    "running": "cli:wang",
}
T0 = datetime(2026, 11, 1, tzinfo=UTC)  # long ago: the running one is taken as interrupted when read


@pytest.fixture(scope="module")
def readers(client: TestClient, database: str, as_: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        access.create_user(session, "zsj", "runs-ops", "runs-ops", PASSWORD, ["ops"])
    engine.dispose()
    return {"steward": as_["psga-steward"], "ops": bearer(login(client, "runs-ops"))}


@pytest.fixture(scope="module")
def recorded(database: str) -> dict[str, int]:
    """A run of the population item per trigger, each recorded on another host, as the ingestion path leaves it."""
    engine = make_engine(database)
    made = {}
    with session_scope(engine) as session:
        item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
        for n, (outcome, trigger) in enumerate(TRIGGERS.items()):
            raw = RawExport(item_id=item_id, sha256=secrets.token_hex(32), file_name=f"p{n}.csv", size_bytes=1,
                            stored_path="/nowhere")  # fmt: skip
            session.add(raw)
            session.flush()
            started = T0 + timedelta(hours=n)
            batch = IngestBatch(item_id=item_id, raw_export_id=raw.id, outcome=outcome, trigger=trigger, host=HOST,
                                pid=PID, started_at=started, finished_at=None if outcome == "running" else started,
                                reasons=[], report={})  # fmt: skip
            session.add(batch)
            session.flush()
            made[outcome] = batch.id
    engine.dispose()
    return made


def seen(record: dict[str, Any]) -> tuple[Any, ...]:
    return record["trigger"], record["host"], record["pid"]


def test_a_departments_steward_sees_no_host_pid_or_login(
    client: TestClient, readers: dict[str, dict[str, str]], recorded: dict[str, int]
) -> None:
    steward = readers["steward"]
    listed = status_of(client.get("/runs", params={"item": POPULATION}, headers=steward), 200)["runs"]
    by_batch = {run["batch"]: run for run in listed}

    assert seen(by_batch[recorded["quarantined"]]) == ("cli", None, None)
    assert seen(by_batch[recorded["published"]]) == (TRIGGERS["published"], None, None)  # no person in it
    interrupted = by_batch[recorded["running"]]
    assert interrupted["outcome"] == "interrupted" and seen(interrupted) == ("cli", None, None)
    assert not any(HOST in reason or str(PID) in reason for reason in interrupted["reasons"])
    report = status_of(client.get(f"/runs/{recorded['quarantined']}", headers=steward), 200)
    assert seen(report) == ("cli", None, None)
    waiting = status_of(client.get("/quarantine", params={"item": POPULATION}, headers=steward), 200)["batches"]
    assert {seen(run) for run in waiting if run["batch"] == recorded["quarantined"]} == {("cli", None, None)}


def test_ops_see_every_detail(client: TestClient, readers: dict[str, dict[str, str]], recorded: dict[str, int]) -> None:
    listed = status_of(client.get("/runs", params={"item": POPULATION}, headers=readers["ops"]), 200)["runs"]
    by_batch = {run["batch"]: run for run in listed}

    for outcome, batch in recorded.items():
        assert seen(by_batch[batch]) == (TRIGGERS[outcome], HOST, PID), outcome
    report = status_of(client.get(f"/runs/{recorded['quarantined']}", headers=readers["ops"]), 200)
    assert seen(report) == ("cli:li.na", HOST, PID)
