"""The API over HTTP on PostgreSQL: 32 concurrent clients reading 100-row masked pages of a subscribed item
(random pages), against uvicorn with two worker processes. Prints requests/s and latency percentiles.

    uv run python bench/http_bench.py --seconds 30

Targets (issue 4): p99 <= 100 ms and >= 500 requests/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile  # noqa: E402
from download_bench import prepare, running_api  # noqa: E402
from ingest_bench import generate_export  # noqa: E402


async def client_loop(base: str, headers: dict[str, str], rows: int, until: float, latencies: list[float]) -> int:
    errors = 0
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        while time.perf_counter() < until:
            after = random.randrange(0, max(1, rows - 100))
            began = time.perf_counter()
            response = await client.get("/items/BENCH-0001/data", params={"after": after, "limit": 100})
            latencies.append(time.perf_counter() - began)
            errors += response.status_code != 200
    return errors


async def load(base: str, headers: dict[str, str], rows: int, clients: int, seconds: float) -> None:
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(client_loop(base, headers, rows, started + seconds, latencies) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    rate = len(latencies) / elapsed
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    verdict = "PASS" if rate >= 500 and p99 <= 100 else "MISS"
    print(f"  {clients} clients, {len(latencies):,} requests in {elapsed:.1f} s: {rate:,.0f} requests/s, "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {sum(errors)} errors  [{verdict}: >= 500/s, p99 <= 100 ms]")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        export = workdir / "export.csv"
        generate_export(export, args.rows)
        with fresh_database("postgresql", workdir) as url:
            print("[postgresql]")
            secret = prepare(url, export, workdir)
            with running_api(url, args.workers) as (_, base):
                asyncio.run(load(base, {"Authorization": f"Bearer {secret}"}, args.rows, args.clients, args.seconds))


if __name__ == "__main__":
    main()
