"""Verification look-ups over HTTP on PostgreSQL (issue 15): a 1,000,000-row version of the benchmark item, keyed by
its record number, published (with its key index) as the ingestion path publishes it; then the API as production
runs it (`python -m api.serve`, three worker processes) and

* single look-ups: 16 concurrent clients (one machine token each, as 16 department systems), each sending one record
  at a time to ``POST /items/BENCH-0001/verify`` (half of them keys that exist, compared on a second field), for
  ``--seconds``; latency percentiles at the client;
* batches: 1,000-record calls one after another (``--batches`` of them), each timed whole.

Targets: single look-ups p99 <= 20 ms at 16 clients; a 1,000-record batch <= 200 ms.

Each client's connection stays on one API process, whose per-principal limit (100 requests per 2 seconds, api/limits.py)
refuses it past 50 calls/s: a refused call (429) is counted apart, not in the latencies, and the client waits as told.
The CPU each look-up cost is printed per kind of process (PostgreSQL: the backends serving the bench's database).

    .venv/bin/python bench/verify_bench.py                    # 1,000,000 rows, 30 s of single look-ups
    .venv/bin/python bench/verify_bench.py --rows 100000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile  # noqa: E402
from download_bench import prepare, running_api  # noqa: E402
from http_bench import PROCESSES, cpu_seconds, more_tokens  # noqa: E402
from ingest_bench import generate_export  # noqa: E402

PATH = "/items/BENCH-0001/verify"
SINGLE_P99_MS, BATCH_MS = 20.0, 200.0


def known_records(export: Path, count: int, seed: int = 11) -> list[dict[str, str]]:
    """Records the consumer holds: the key and the street of rows of the export (read from the file, as a department
    would hold them)."""
    with export.open(encoding="utf-8") as handle:
        rows = [{"记录编号": row["记录编号"], "所属街道": row["所属街道"]} for row in csv.DictReader(handle)]
    return random.Random(seed).sample(rows, min(count, len(rows)))


def one_record(known: list[dict[str, str]], rows: int) -> dict[str, str]:
    """Half the look-ups a record that exists (key and street), half a key beyond the version."""
    if random.random() < 0.5:
        return random.choice(known)
    return {"记录编号": str(rows + random.randrange(1, rows))}


async def client_loop(base: str, secret: str, known: list[dict[str, str]], rows: int, until: float,
                      latencies: list[float]) -> Counter[int]:  # fmt: skip
    errors: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(base, headers=headers, connector=aiohttp.TCPConnector(limit=1)) as client:
        while time.perf_counter() < until:
            began = time.perf_counter()
            async with client.post(PATH, json={"records": [one_record(known, rows)]}) as response:
                await response.read()
                if response.status == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    errors[response.status] += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", 0)))
    return errors


async def single_lookups(base: str, secrets: list[str], known: list[dict[str, str]], rows: int, seconds: float,
                         database: str = "") -> bool:  # fmt: skip
    latencies: list[float] = []
    for secret in secrets:  # a first look-up each: connections and the process caches warm
        headers = {"Authorization": f"Bearer {secret}"}
        async with (
            aiohttp.ClientSession(base, headers=headers) as client,
            client.post(PATH, json={"records": [known[0]]}) as response,
        ):
            await response.read()
    processes = cpu_selected(database)
    cpu_before = {name: cpu_seconds(selected) for name, selected in processes.items()}
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(client_loop(base, secret, known, rows, started + seconds, latencies) for secret in secrets)
    )
    elapsed = time.perf_counter() - started
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    met = p99 <= SINGLE_P99_MS
    print(f"  single look-ups, {len(secrets)} clients: {len(latencies):,} in {elapsed:.1f} s "
          f"({len(latencies) / elapsed:,.0f}/s), p50 {p50:.1f} ms, p99 {p99:.1f} ms, refused: "
          f"{dict(sum(errors, Counter())) or 'none'}  [{'PASS' if met else 'MISS'}: p99 <= {SINGLE_P99_MS:g} ms]")  # fmt: skip
    spent = {name: cpu_seconds(processes[name]) - before for name, before in cpu_before.items()}
    print("  CPU per look-up: " + ", ".join(f"{name} {cpu / max(1, len(latencies)) * 1000:.2f} ms"
                                            for name, cpu in spent.items()))  # fmt: skip
    return met


def cpu_selected(database: str) -> dict[str, Callable[[str, str], bool]]:
    """The processes whose CPU is counted: PostgreSQL's backends serving this database alone (not its shared
    processes, nor other databases' backends on a shared machine)."""
    selected = {name: PROCESSES[name] for name in ("API (uvicorn)", "load generator")}
    if database:
        selected["PostgreSQL backends"] = lambda pid, command: command.startswith("postgres:") and database in command
    return selected


def batches(base: str, secret: str, known: list[dict[str, str]], rows: int, count: int) -> bool:
    timings, matched = [], 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as client:
        for number in range(count + 1):
            records = [one_record(known, rows) for _ in range(1000)]
            began = time.perf_counter()
            response = client.post(PATH, json={"records": records})
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise SystemExit(f"a batch was refused: HTTP {response.status_code} {response.text[:300]}")
            if number:  # the first one warms up
                timings.append(elapsed)
                matched += sum(result["match"] for result in response.json()["results"])
    p50, worst = percentile(timings, 50) * 1000, max(timings) * 1000
    met = worst <= BATCH_MS
    print(f"  1,000-record batches: {count}, p50 {p50:.0f} ms, max {worst:.0f} ms, {matched / count:.0f} matches "
          f"a batch  [{'PASS' if met else 'MISS'}: <= {BATCH_MS:g} ms]")  # fmt: skip
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description="Verification look-ups over HTTP on PostgreSQL.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    print("== verification benchmark ==")
    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        export = workdir / "export.csv"
        started = time.perf_counter()
        generate_export(export, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
        known = known_records(export, 20_000)
        with fresh_database("postgresql", workdir) as url:
            print("[postgresql]")
            secrets = [prepare(url, export, workdir), *more_tokens(url, args.clients - 1)]
            with running_api(url, args.workers) as (_, base):
                database = str(make_url(url).database)
                single = asyncio.run(single_lookups(base, secrets, known, args.rows, args.seconds, database))
                batched = batches(base, secrets[0], known, args.rows, args.batches)
    print(f"overall: {'PASS' if single and batched else 'MISS'}")


if __name__ == "__main__":
    main()
