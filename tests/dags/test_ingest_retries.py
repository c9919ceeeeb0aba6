"""Ingestion tasks retry an infrastructure error within seconds, then back off (issue 12: on a cold start every first
try met Airflow's api-server not listening yet, and a 5-minute retry delay held the first publication back 7.5
minutes)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.dags.test_ingest_items import EXPECTED_DAGS, dagbag, platform  # noqa: F401  (platform: a fixture)


def retry_waits(task: object) -> list[timedelta]:
    """The shortest wait before each retry, as Airflow computes it (it adds up to as much again, as jitter)."""
    base, factor = task.retry_delay, task.retry_exponential_backoff or 1.0  # type: ignore[attr-defined]
    cap = task.max_retry_delay or timedelta.max  # type: ignore[attr-defined]
    return [min(base * factor**attempt, cap) for attempt in range(task.retries)]  # type: ignore[attr-defined]


def test_ingest_tasks_retry_within_seconds_and_back_off(platform: str, airflow_db: Path) -> None:  # noqa: F811
    bag = dagbag()
    for dag_id in EXPECTED_DAGS:
        task = bag.get_dag(dag_id).get_task("ingest")
        waits = retry_waits(task)
        assert waits[0] <= timedelta(seconds=15)  # the api-server of a cold start listens by then
        assert waits == sorted(waits) and waits[-1] <= timedelta(minutes=5)  # backing off, never for long
        assert sum(waits, timedelta()) >= timedelta(minutes=5)  # a short outage is outlasted
