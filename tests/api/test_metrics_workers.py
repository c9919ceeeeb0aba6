"""``python -m api.serve --workers 2``: each worker counts in files of its own, and a scrape, whichever worker answers
it, shows the sum; an earlier server's files are gone when it starts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_serve import workers_listening
from tests.servers import api_server

REQUESTS = 40


@pytest.fixture
def two_workers(database_factory: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The server on a free port over a database and a data folder of its own; stopped by its pid."""
    data_dir = tmp_path / "data"
    metrics_dir = data_dir / "metrics"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_999999.db").write_bytes(b"an earlier server's counts")  # must not be summed
    env = {**os.environ, "DATASHARE_DATABASE_URL": database_factory("sqlite"), "DATASHARE_DATA_DIR": str(data_dir)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with api_server(env, "--workers", "2", "--log-level", "warning", ready=_two_answering) as (_, base):
        yield base, metrics_dir


def _two_answering(base: str) -> bool:
    return len(workers_listening(base.rsplit(":", 1)[1])) == 2 and _answers(base)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def live_requests_counted(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "datashare_http_requests_total" and sample.labels["route"] == "/health/live":
                return sample.value
    return 0.0


def test_the_request_counter_is_summed_over_the_workers(two_workers: tuple[str, Path]) -> None:
    base, metrics_dir = two_workers
    for _ in range(REQUESTS):  # a connection each: the kernel spreads them over both workers' sockets
        assert httpx.get(f"{base}/health/live").status_code == 200
    scrapes = [httpx.get(f"{base}/metrics") for _ in range(6)]  # answered by either worker
    assert {scrape.status_code for scrape in scrapes} == {200}
    assert {live_requests_counted(scrape.text) for scrape in scrapes} == {REQUESTS}
    assert "datashare_catalog_figure_up" in scrapes[0].text  # the database's figures, by whichever answered

    workers = workers_listening(base.rsplit(":", 1)[1])
    counted_by = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("counter_*.db")}
    assert counted_by == workers and len(workers) == 2  # both counted; the earlier server's file was removed
    assert oct(metrics_dir.stat().st_mode & 0o777) == oct(0o700)
