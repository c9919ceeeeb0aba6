"""Ingestion benchmark: a generated export of N rows x 20 columns through decode, conform, validate (Great
Expectations) and publish, on SQLite and PostgreSQL; rows per second end to end and peak memory; and the
parse time of the DAG file with 1,000 items in the pipeline manifest.

    uv run python bench/ingest_bench.py                    # 1,000,000 rows, both backends, 3 runs each
    uv run python bench/ingest_bench.py --rows 100000 --backend sqlite --repeat 1
    uv run python bench/ingest_bench.py --rows 1000000,5000000 --backend postgresql --exports /tmp/exports

Each backend runs in its own process. The peak memory of each ingestion is the process's peak resident memory
(VmHWM) during it; ``peak_rss_mb`` is the first one's, the process fresh as an Airflow task's is (a task runs in a
process of its own), and ``peak_rss_mb_runs`` lists all (later runs in the same process start from a heap the
earlier ones left fragmented: a few tens of MB higher). On PostgreSQL the same process
then times the baseline, a plain ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the same file into an ordinary
table of the declared types, and prints the ratio of the two (plain COPY seconds / ingestion seconds).
Targets (issue 16): ratio >= 0.5, peak memory <= 1.5 GB and flat in the export's size; DAG parse <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADMIN_URL = os.environ.get("DATASHARE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
USCC_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXY", dtype=np.uint8)
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)

FIELDS = [
    {"name": "记录编号", "data_type": "integer", "key": True, "semantic_type": "identifier", "level": 1},
    {"name": "公民身份号码", "semantic_type": "resident_id", "level": 3},
    {"name": "统一社会信用代码", "semantic_type": "uscc", "level": 1},
    {"name": "姓名", "semantic_type": "person_name", "level": 3},
    {"name": "联系电话", "semantic_type": "phone", "level": 3},
    {"name": "性别", "semantic_type": "code_list", "allowed_values": ["男", "女"], "level": 2},
    {"name": "出生日期", "data_type": "date", "minimum": "1900-01-01", "level": 3},
    {"name": "登记时间", "data_type": "datetime", "level": 1},
    {"name": "金额", "data_type": "decimal", "minimum": "0", "level": 1},
    {"name": "数量", "data_type": "integer", "minimum": "0", "maximum": "1000000", "level": 1},
    {
        "name": "所属街道",
        "semantic_type": "code_list",
        "allowed_values": ["坪山街道", "马峦街道", "碧岭街道", "石井街道", "坑梓街道", "龙田街道"],
        "level": 1,
    },
    {"name": "状态", "semantic_type": "code_list", "allowed_values": ["有效", "注销"], "level": 1},
    {"name": "备注", "semantic_type": "free_text", "level": 1},
    {"name": "地址", "semantic_type": "address", "level": 3},
    {"name": "是否有效", "data_type": "boolean", "level": 1},
    {"name": "类别代码", "pattern": "^[A-Z][0-9]{3}$", "level": 1},
    {"name": "更新时间", "data_type": "datetime", "level": 1},
    {"name": "比例", "data_type": "decimal", "level": 1},
    {"name": "来源", "level": 1},
    {"name": "版本号", "data_type": "integer", "level": 1},
]


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((len(values), width), dtype=np.uint8)
    remaining = values.astype(np.int64).copy()
    for column in range(width - 1, -1, -1):
        out[:, column] = 48 + remaining % 10
        remaining //= 10
    return out


def _strings(matrix: np.ndarray) -> list[str]:
    return matrix.view(f"S{matrix.shape[1]}").ravel().astype(str).tolist()


def generate_export(path: Path, rows: int, seed: int = 7, block: int = 500_000) -> None:
    """Written in blocks of ``block`` rows (each seeded from ``seed`` and its number), so that a large export does not
    need its rows in memory at once."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(str(field["name"]) for field in FIELDS) + "\n")
        for number, first in enumerate(range(0, rows, block)):
            handle.writelines(_rows(first, min(block, rows - first), np.random.default_rng([seed, number])))


def _rows(first: int, rows: int, rng: np.random.Generator) -> Iterator[str]:
    birth_days = rng.integers(0, 365 * 80, rows)
    birth = np.datetime64("1940-01-01") + birth_days.astype("timedelta64[D]")
    birth_text = np.datetime_as_string(birth, unit="D")
    ymd = np.char.replace(birth_text, "-", "").astype(np.int64)
    body = np.hstack(
        [
            _digits(rng.choice([440307, 440310, 440303], rows), 6),
            _digits(ymd, 8),
            _digits(rng.integers(0, 1000, rows), 3),
        ]
    )
    ids = np.hstack([body, ID_CHECK[((body.astype(np.int64) - 48) @ ID_WEIGHTS) % 11][:, None]])
    values = rng.integers(0, 31, (rows, 17))
    uscc = USCC_ALPHABET[np.hstack([values, ((31 - (values @ USCC_WEIGHTS) % 31) % 31)[:, None]])]
    phones = np.hstack(
        [
            np.full((rows, 1), ord("1"), np.uint8),
            _digits(rng.integers(3, 10, rows), 1),
            _digits(rng.integers(0, 10**9, rows), 9),
        ]
    )
    registered = np.datetime_as_string(
        np.datetime64("2020-01-01T00:00:00") + rng.integers(0, 6 * 365 * 86400, rows).astype("timedelta64[s]"), unit="s"
    )
    streets = np.array(["坪山街道", "马峦街道", "碧岭街道", "石井街道", "坑梓街道", "龙田街道"])[
        rng.integers(0, 6, rows)
    ]
    columns = [
        [str(i) for i in range(first + 1, first + rows + 1)], _strings(ids), _strings(uscc),
        np.array(["陈华", "李娜", "王伟", "张敏", "刘洋"])[rng.integers(0, 5, rows)].tolist(), _strings(phones),
        np.array(["男", "女"])[rng.integers(0, 2, rows)].tolist(), birth_text.tolist(),
        np.char.replace(registered, "T", " ").tolist(), (rng.integers(0, 10**7, rows) / 100).astype(str).tolist(),
        rng.integers(0, 10**6, rows).astype(str).tolist(), streets.tolist(),
        np.array(["有效", "注销"])[rng.integers(0, 2, rows)].tolist(), ["无"] * rows,
        [f"深圳市坪山区{s}{n}号" for s, n in zip(streets.tolist(), rng.integers(1, 300, rows).tolist(), strict=True)],
        np.array(["true", "false"])[rng.integers(0, 2, rows)].tolist(),
        [f"A{n:03d}" for n in rng.integers(0, 1000, rows).tolist()], np.char.replace(registered, "T", " ").tolist(),
        (rng.random(rows)).round(4).astype(str).tolist(), ["system"] * rows, ["1"] * rows,
    ]  # fmt: skip
    return (",".join(row) + "\n" for row in zip(*columns, strict=True))


def catalog_text() -> str:
    import yaml

    return yaml.safe_dump(
        {
            "version": 1,
            "departments": [{"code": "bench", "name_zh": "基准部门", "name_en": "Bench", "kind": "district_unit"}],
            "items": [
                {
                    "code": "BENCH-0001", "title": "基准数据", "department": "bench", "update_frequency": "@daily",
                    "sharing_type": "conditional", "status": "published", "fields": FIELDS,
                }
            ],
        },
        allow_unicode=True,
    )  # fmt: skip


def run_backend(backend: str, export: Path, workdir: Path, repeat: int) -> dict[str, object]:
    """In this process: a fresh database and the item, then `repeat` timed ingestions of the export (each a
    different file: blank lines appended, which the readers skip, so none is taken for a duplicate)."""
    from sqlalchemy import create_engine, text

    from catalog.db import make_engine, session_scope
    from catalog.declarations.service import import_catalog, parse_catalog_text
    from catalog.ingest.exports import export_at
    from catalog.ingest.service import ingest_export
    from catalog.migrate import upgrade

    database = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        database = f"datashare_ingest_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    engine = make_engine(url)
    runs, peaks = [], []
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            import_catalog(session, parse_catalog_text(catalog_text()), actor="bench:officer", by_officer=True)
        import great_expectations  # noqa: F401  (its import, ~5 s, is start-up cost, not per-export cost)

        mine = workdir / export.name  # a copy of its own, made a new file for each run by a blank line appended
        shutil.copyfile(export, mine)
        for attempt in range(repeat):
            if attempt:
                with mine.open("ab") as handle:
                    handle.write(b"\n")
            _reset_peak_memory()
            cpu_before, started = time.process_time(), time.perf_counter()
            with session_scope(engine) as session:
                outcome = ingest_export(session, "BENCH-0001", export_at(mine), mine.name, raw_dir=workdir / "raw",
                                        trigger="bench")  # fmt: skip
            seconds = time.perf_counter() - started
            runs.append((seconds, time.process_time() - cpu_before, outcome))
            peaks.append(_peak_memory_mb())
        copies = [plain_copy_seconds(engine, export) for _ in range(repeat)] if backend == "postgresql" else []
    finally:
        engine.dispose()
        if database:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    seconds, cpu, outcome = sorted(runs, key=lambda run: run[0])[len(runs) // 2]  # the median run
    copy = sorted(copies)[len(copies) // 2] if copies else None
    return {
        "backend": backend, "outcome": outcome.outcome, "rows": outcome.rows_accepted,
        "runs_s": [round(run[0], 2) for run in runs], "median_s": round(seconds, 2),
        "rows_per_second": round(outcome.rows_accepted / seconds), "python_cpu_s": round(cpu, 1),
        "plain_copy_s": [round(one, 2) for one in copies], "ratio_to_copy": round(copy / seconds, 2) if copy else None,
        "reasons": outcome.reasons[:3], "peak_rss_mb": peaks[0], "peak_rss_mb_runs": peaks,
    }  # fmt: skip


def _reset_peak_memory() -> None:
    """Linux keeps a process's peak resident memory (VmHWM); writing 5 to clear_refs starts it afresh."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_memory_mb() -> int:
    """The process's peak resident memory since the last reset, in MB."""
    status = Path("/proc/self/status").read_text()
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kilobytes / 1024)


PLAIN_TYPES = {"integer": "bigint", "decimal": "numeric", "date": "date", "datetime": "timestamp", "boolean": "boolean"}


def plain_copy_seconds(engine: Any, export: Path) -> float:
    """The baseline: ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the same file into a plain table of the declared
    types (no key, no index), as ``psql \\copy`` does, in a transaction rolled back afterwards. The table is an ordinary
    one, written to PostgreSQL's log as a version's table is (a temporary table is not: about 10 % faster)."""
    columns = ", ".join(f'"f{n}" {PLAIN_TYPES.get(str(field.get("data_type")), "text")}' for n, field in
                        enumerate(FIELDS, 1))  # fmt: skip
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        driver.execute(f"CREATE TABLE plain_copy ({columns})")
        started = time.perf_counter()
        statement = "COPY plain_copy FROM STDIN (FORMAT csv, HEADER)"
        with driver.cursor() as cursor, cursor.copy(statement) as copy, export.open("rb") as source:
            while block := source.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
        connection.rollback()
    return seconds


def dag_parse_seconds(items: int, workdir: Path) -> float:
    data_dir = workdir / "dagdata"
    data_dir.mkdir(parents=True)
    entries = [
        {"item": f"BENCH-{i:04d}", "title": f"基准数据{i}", "schedule": "@daily", "department": f"d{i % 100}",
         "source_system": "s", "access": "file_drop", "format": "csv"}
        for i in range(items)
    ]  # fmt: skip
    (data_dir / "pipelines.json").write_text(json.dumps({"pipelines": entries}, ensure_ascii=False), encoding="utf-8")
    code = (
        "import time, runpy, sys, airflow.sdk; started = time.perf_counter(); runpy.run_path(sys.argv[1]); "
        "print(time.perf_counter() - started)"
    )
    env = {**os.environ, "DATASHARE_DATA_DIR": str(data_dir), "AIRFLOW_HOME": str(workdir / "airflow")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "ingest_items.py")], env=env, capture_output=True, text=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000000", help="rows of the export; several sizes comma-separated")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="timed ingestions per backend; the median is reported")
    parser.add_argument("--exports", type=Path, help="keep (or reuse) the generated exports in this folder")
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "EXPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as scratch:  # the raw store's copies: gigabytes for the larger exports
            result = run_backend(args.one[0], Path(args.one[1]), Path(scratch), args.repeat)
        print(json.dumps(result, ensure_ascii=False))
        return
    from catalog_bench import machine_facts

    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        for rows in (int(size) for size in args.rows.split(",")):
            export = (args.exports or workdir) / f"bench_export_{rows}.csv"
            if not export.exists():
                started = time.perf_counter()
                generate_export(export, rows)
                print(f"generated {rows:,} rows x {len(FIELDS)} columns in {time.perf_counter() - started:.1f} s")
            print(f"export: {export} ({export.stat().st_size / 1e6:.0f} MB)")
            for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
                command = [sys.executable, __file__, "--one", backend, str(export), "--repeat", str(args.repeat)]
                completed = subprocess.run(command, capture_output=True, text=True, check=False)
                lines = completed.stdout.strip().splitlines()
                print(lines[-1] if lines else completed.stderr[-2000:])
                print(f"load after {backend}: {os.getloadavg()[0]:.2f}")
        parses = sorted(dag_parse_seconds(1000, workdir / f"dags{attempt}") for attempt in range(3))
        print(f"DAG file parse with 1,000 items (airflow.sdk already imported), median of 3: {parses[1]:.2f} s")
        print(
            "targets (issue 16): on PostgreSQL a ratio to the plain COPY of the same file >= 0.5, peak memory <= 1,536 MB "
            "and no higher for 5,000,000 rows than for 1,000,000; DAG parse <= 1 s"
        )


if __name__ == "__main__":
    main()
