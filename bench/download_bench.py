"""A 1,000,000-row CSV download through the API over HTTP, on PostgreSQL: throughput and the API process's
memory growth while it streams. The version is the ingestion benchmark's generated export (20 columns), read
by a subscriber approved up to level 2, so the level-3 columns are masked on the way out.

    uv run python bench/download_bench.py --export /tmp/export1m.csv     # reuse ingest_bench's export
    uv run python bench/download_bench.py --rows 200000

Targets (issue 4): >= 50 MB/s, peak memory growth <= 100 MB.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts  # noqa: E402
from ingest_bench import FIELDS, catalog_text, generate_export  # noqa: E402

from catalog.access.service import create_machine_token  # noqa: E402
from catalog.db import make_engine, session_scope, utcnow  # noqa: E402
from catalog.declarations.service import import_catalog, parse_catalog_text  # noqa: E402
from catalog.departments.models import Department  # noqa: E402
from catalog.ingest.service import ingest_export  # noqa: E402
from catalog.items.models import CatalogItem  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.subscriptions.models import Subscription  # noqa: E402

CONSUMER = {"code": "consumer", "name_zh": "消费部门", "name_en": "Consumer", "kind": "district_unit"}


def prepare(url: str, export: Path, workdir: Path) -> str:
    """The item published from the export, a consumer department subscribed at level 2, and its token."""
    from sqlalchemy import select

    engine = make_engine(url)
    upgrade(engine)
    text = catalog_text().replace("departments:\n", "departments:\n- " + _yaml(CONSUMER) + "\n", 1)
    with session_scope(engine) as session:
        import_catalog(session, parse_catalog_text(text), actor="bench:officer", by_officer=True)
    started = time.perf_counter()
    with session_scope(engine) as session:
        outcome = ingest_export(session, "BENCH-0001", export.read_bytes(), export.name, raw_dir=workdir / "raw",
                                trigger="bench")  # fmt: skip
    print(f"  published {outcome.rows_accepted:,} rows in {time.perf_counter() - started:.1f} s")
    with session_scope(engine) as session:
        item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == "BENCH-0001"))
        consumer_id = session.scalar(select(Department.id).where(Department.code == "consumer"))
        now = utcnow()
        session.add(Subscription(item_id=item_id, consumer_department_id=consumer_id, status="active",
                                 fields=[field["name"] for field in FIELDS], approved_level=2, purpose="bench",
                                 legal_basis="bench", period_days=30, requested_by="bench", active_from=now,
                                 expires_at=now + timedelta(days=30)))  # fmt: skip
        _, secret = create_machine_token(session, "consumer", "bench", 1, "bench")
    engine.dispose()
    return secret


def _yaml(department: dict[str, str]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in department.items()) + "}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def running_api(
    url: str, workers: int = 1, settings: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The API (`python -m api.serve`, as the container runs it) on a free port over this database, once it answers;
    ``settings``: more DATASHARE_* variables."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **(settings or {}), "DATASHARE_DATABASE_URL": url},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)


def download(url: str, secret: str) -> None:
    with running_api(url) as (server, base):
        headers = {"Authorization": f"Bearer {secret}"}
        httpx.get(f"{base}/items/BENCH-0001/data", params={"limit": 10}, headers=headers).raise_for_status()
        baseline, peak, done = rss_mb(server.pid), 0.0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(server.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        received, lines, started = 0, 0, time.perf_counter()
        with httpx.stream("GET", f"{base}/items/BENCH-0001/data.csv", headers=headers, timeout=600) as response:
            response.raise_for_status()
            masked = response.headers["x-datashare-masked-fields"]
            for chunk in response.iter_bytes():
                received += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        rate = received / seconds / 1e6
        growth = peak - baseline
        verdict = "PASS" if rate >= 50 and growth <= 100 else "MISS"
        print(f"  CSV: {lines - 1:,} rows, {received / 1e6:.0f} MB in {seconds:.1f} s = {rate:.1f} MB/s; API process "
              f"RSS {baseline:.0f} MB before, peak {peak:.0f} MB (growth {growth:.0f} MB); masked: {masked}  "
              f"[{verdict}: >= 50 MB/s, growth <= 100 MB]")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--export", type=Path)
    args = parser.parse_args()
    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        export = args.export or workdir / "export.csv"
        if not export.exists():
            generate_export(export, args.rows)
        with fresh_database("postgresql", workdir) as url:
            print("[postgresql]")
            download(url, prepare(url, export, workdir))


if __name__ == "__main__":
    main()
