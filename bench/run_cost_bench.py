"""The fixed cost of one run (issue 13): wall time of `datashare --help`, and of a 100-row export ingested the way
the DAG's task runs it, each in a fresh Python process (every import included), on SQLite and PostgreSQL.

    .venv/bin/python bench/run_cost_bench.py                          # both backends, 5 runs each
    .venv/bin/python bench/run_cost_bench.py --backend sqlite --repeat 3
    .venv/bin/python bench/run_cost_bench.py --million                # and the 1,000,000-row figure (ingest_bench)
    .venv/bin/python bench/run_cost_bench.py --tree /tmp/head         # the same, for another checkout (before/after)

Per backend: a fresh database (``fresh_database`` of catalog_bench.py) and a temporary data folder, set up through
`datashare demo` with no sample exports (schema, demo catalog, principals: PSGA-RK-0001 is published with a file
drop source). Each timed run writes a new 100-row export of the demo's population sample into the item's drop
folder, then starts ``python -c …`` that does what dags/ingest_items.py ``pull_and_ingest`` does: its imports
(inside ``loading_for_good``), ``_platform`` (quiet loggers, settings, ``make_engine``), then
``catalog.ingest.task.ingest_newest``. It prints the median and the
minimum wall time (from before the process starts to its exit), the time until the export's bytes are decoded (the
first row, taken inside the process) and the outcome, which must be ``published``.
Targets: the 100-row run <= 2 s, `datashare --help` <= 0.5 s; the million-row figure >= 100,000 rows/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from catalog_bench import fresh_database, machine_facts  # noqa: E402

ITEM = "PSGA-RK-0001"
SAMPLE = ROOT / "catalog" / "demo" / "samples" / "psga_population_20261120.csv"
# The DAG task's body, in the child: the time of the first decode (the first row) is noted without changing what is
# imported or when (the service binds decode_file; the Airflow-only parts, the log lines and the Asset event, left
# out: a task's process has Airflow loaded before the task starts).
TASK = """
import json, sys, time
from catalog.ingest.third_party import loading_for_good
with loading_for_good():
    from catalog import logsafe
    from catalog.errors import DomainError
    from catalog.ingest.service import IngestInProgress
    from catalog.ingest.task import ingest_newest
from catalog.db import make_engine
from catalog.ingest import service
from catalog.ingest.third_party import quiet_third_party_logging
from catalog.settings import get_settings
first_row = []
decode = service.decode_file
def noting_decode(*args, **kwargs):
    first_row.append(time.time())
    return decode(*args, **kwargs)
service.decode_file = noting_decode
quiet_third_party_logging()
settings = get_settings()
engine = make_engine(settings.resolved_database_url)
try:
    report = ingest_newest(engine, settings, sys.argv[1], "bench:run_cost")
finally:
    engine.dispose()
print(json.dumps({"outcome": report.outcome, "first_row": first_row[0] if first_row else None}))
"""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # user + system seconds of the child: steadier than the wall time on a shared machine
    stdout: str


def timed(command: list[str], env: dict[str, str], tree: Path) -> Run:
    """``python <command>`` in a fresh process whose imports come from ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run([sys.executable, *command], env={**env, "PYTHONPATH": str(tree)}, cwd=tree,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Run(seconds, cpu, done.stdout)


def help_runs(repeat: int, tree: Path) -> list[Run]:
    """`datashare --help` as ``python -m catalog --help`` (the same imports as the installed script), so that
    another checkout can be measured too."""
    env = {**os.environ, "DATASHARE_DATA_DIR": tempfile.mkdtemp(prefix="run_cost_help_")}
    timed(["-m", "catalog", "--help"], env, tree)  # a first run warms the disk cache
    return [timed(["-m", "catalog", "--help"], env, tree) for _ in range(repeat)]


@contextmanager
def platform_with_item(backend: str, workdir: Path, tree: Path) -> Iterator[dict[str, str]]:
    """The environment of a data folder and database with the demo catalog and no exports yet."""
    with fresh_database(backend, workdir) as url:
        env = {**os.environ, "DATASHARE_DATA_DIR": str(workdir / "data"), "DATASHARE_DATABASE_URL": url}
        empty = workdir / "no-samples"
        empty.mkdir()
        timed(["-m", "catalog", "demo", "--samples", str(empty)], env, tree)
        yield env


def write_export(drop_folder: Path, run: int, rows: int) -> None:
    """A new export of ``rows`` rows (a different file each run: every run publishes a version)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    drop_folder.mkdir(parents=True, exist_ok=True)
    body = "".join(lines[: rows + 1]) + "\n" * run  # blank lines, which the reader skips, make the bytes new
    (drop_folder / f"psga_population_2027{run:04d}.csv").write_text(body, encoding="utf-8")


def ingest_runs(backend: str, repeat: int, rows: int, tree: Path) -> list[tuple[Run, float | None]]:
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="run_cost_") as workdir,
        platform_with_item(backend, Path(workdir), tree) as env,
    ):
        drop_folder = Path(env["DATASHARE_DATA_DIR"]) / "drop" / "psga" / "population"
        for run in range(repeat + 1):  # the first run warms the disk cache and is not counted
            write_export(drop_folder, run, rows)
            started = time.time()
            run_ = timed(["-c", TASK, ITEM], env, tree)
            report = json.loads(run_.stdout.strip().splitlines()[-1])
            if report["outcome"] != "published":
                raise SystemExit(f"run {run} on {backend}: {report['outcome']}, expected published")
            first_row = report["first_row"] - started if report["first_row"] else None
            if run:
                results.append((run_, first_row))
    return results


def describe(label: str, runs: list[Run], target: float) -> str:
    walls = [run.wall for run in runs]
    median = statistics.median(walls)
    verdict = "PASS" if median <= target else "MISS"
    each = ", ".join(f"{wall:.2f}" for wall in walls)
    cpu = statistics.median(run.cpu for run in runs)
    return (
        f"{label:<30} wall median {median:5.2f} s  min {min(walls):5.2f} s  ({each}); CPU median {cpu:5.2f} s;"
        f"  target <= {target} s: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code runs (default: this one)")
    parser.add_argument("--million", action="store_true", help="also run ingest_bench.py (1,000,000 rows)")
    args = parser.parse_args()
    tree = args.tree.resolve()
    for line in machine_facts():
        print(line)
    print(f"code:     {tree}")
    # Deployed code runs from bytecode compiled at install (./dev run, docker/Dockerfile), whatever
    # PYTHONDONTWRITEBYTECODE says: so does the code measured here.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "catalog", "api", "dags"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    print(describe("datashare --help", help_runs(args.repeat, tree), 0.5))
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        results = ingest_runs(backend, args.repeat, args.rows, tree)
        print(describe(f"{args.rows}-row ingest, {backend}", [run for run, _ in results], 2.0))
        first_rows = [first for _, first in results if first is not None]
        if first_rows:
            print(
                f"{'':<30} first row after: median {statistics.median(first_rows):5.2f} s, min {min(first_rows):5.2f} s"
            )
    print(f"load average after: {os.getloadavg()}")
    if args.million:
        million = [sys.executable, str(ROOT / "bench" / "ingest_bench.py"), "--backend", "postgresql"]
        subprocess.run(million, env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True)


if __name__ == "__main__":
    main()
