"""The API over HTTP on PostgreSQL: 32 concurrent clients reading 100-row masked pages of a subscribed item
(random pages), each with its own machine token, against uvicorn with three worker processes. Prints requests/s and latency percentiles.

    uv run python bench/http_bench.py --seconds 30
    uv run python bench/http_bench.py --seal both     # a run without, then one with a sealing loop beside it

Targets (issue 4): p99 <= 100 ms and >= 500 requests/s on this 2-core machine; with the audit trail sealed in
another process meanwhile too (issue 11).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile  # noqa: E402
from download_bench import prepare, running_api  # noqa: E402
from ingest_bench import generate_export  # noqa: E402

from catalog.access.service import create_machine_token  # noqa: E402
from catalog.db import make_engine, session_scope  # noqa: E402


async def client_loop(
    base: str, headers: dict[str, str], rows: int, until: float, latencies: list[float]
) -> Counter[int]:
    """One client: one keep-alive connection, one request at a time (aiohttp: a light client, so that the load
    generator takes as little as it can of the two cores it shares with the API and PostgreSQL)."""
    errors: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as client:
        while time.perf_counter() < until:
            params = {"after": random.randrange(0, max(1, rows - 100)), "limit": 100}
            began = time.perf_counter()
            async with client.get("/items/BENCH-0001/data", params=params) as response:
                await response.read()
                if response.status == 200:
                    latencies.append(time.perf_counter() - began)
                else:  # not counted as served; a refused client waits as told
                    errors[response.status] += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", 0)))
    return errors


def cpu_seconds(selected: Callable[[str, str], bool]) -> float:
    """User + system CPU of the processes whose (pid, command line) are selected."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if selected(pid, command):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


PROCESSES: dict[str, Callable[[str, str], bool]] = {
    "API (uvicorn)": lambda pid, command: "api.serve" in command or "multiprocessing" in command,
    "PostgreSQL": lambda pid, command: "postgres" in command,
    "load generator": lambda pid, command: pid == str(os.getpid()),
    "sealing": lambda pid, command: "seal_loop.py" in command,
}


@contextmanager
def sealing_loop(url: str, data_dir: Path, interval: float) -> Iterator[None]:
    """bench/seal_loop.py in a process of its own for the duration; prints what it sealed and its verification."""
    loop = subprocess.Popen(  # the URL in the environment: a "postgres" in its command line would count as PostgreSQL
        [sys.executable, str(ROOT / "bench" / "seal_loop.py"), "--data-dir", str(data_dir), "--interval", str(interval)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "DATASHARE_DATABASE_URL": url},
    )  # fmt: skip
    assert loop.stdout is not None and loop.stdout.readline().strip() == "ready"
    try:
        yield
    finally:
        loop.terminate()
        summary, _ = loop.communicate(timeout=600)
        print(f"  sealing loop: {summary.strip()}")


async def load(base: str, secrets: list[str], rows: int, seconds: float) -> None:
    latencies: list[float] = []
    clients = len(secrets)
    cpu_before = {name: cpu_seconds(selected) for name, selected in PROCESSES.items()}
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(client_loop(base, {"Authorization": f"Bearer {secret}"}, rows, started + seconds, latencies)
          for secret in secrets)
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    rate = len(latencies) / elapsed
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    verdict = "PASS" if rate >= 500 and p99 <= 100 else "MISS"
    print(f"  {clients} clients, {len(latencies):,} requests in {elapsed:.1f} s: {rate:,.0f} requests/s, "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, refused: {dict(sum(errors, Counter())) or 'none'}  [{verdict}: >= 500/s, p99 <= 100 ms]")  # fmt: skip
    spent = {name: cpu_seconds(selected) - cpu_before[name] for name, selected in PROCESSES.items()}
    print(
        "  CPU per request: " + ", ".join(f"{name} {cpu / len(latencies) * 1000:.1f} ms" for name, cpu in spent.items())
    )


def more_tokens(url: str, count: int) -> list[str]:
    """One token per client, as 32 department systems would hold (the rate limit is per token)."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        secrets = [create_machine_token(session, "consumer", f"bench-{n}", 1, "bench")[1] for n in range(count)]
    engine.dispose()
    return secrets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seal", choices=["off", "on", "both"], default="off",
                        help="seal the audit trail in another process during the load (bench/seal_loop.py); "
                        "both: a run without, then a run with")  # fmt: skip
    parser.add_argument("--seal-interval", type=float, default=1.0, help="seconds between two seals")
    args = parser.parse_args()
    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        export = workdir / "export.csv"
        generate_export(export, args.rows)
        with fresh_database("postgresql", workdir) as url:
            print("[postgresql]")
            secrets = [prepare(url, export, workdir), *more_tokens(url, args.clients - 1)]
            with running_api(url, args.workers) as (_, base):
                for sealing in {"off": [False], "on": [True], "both": [False, True]}[args.seal]:
                    print(f"  sealing every {args.seal_interval:g} s in another process" if sealing else "  no sealing")
                    seals = sealing_loop(url, workdir / "audit", args.seal_interval) if sealing else nullcontext()
                    with seals:
                        asyncio.run(load(base, secrets, args.rows, args.seconds))


if __name__ == "__main__":
    main()
