"""Catalog benchmark: import time and search latency at the scale of a district data bureau.

For each backend (SQLite file, PostgreSQL database of its own), on a fresh database migrated by Alembic:

1. import the generated catalog file the way ``datashare catalog import`` does (``read_catalog_file``, then
   ``import_catalog`` inside one ``session_scope``: parse + validate + write in one transaction), timed;
2. import the same file again, timed, and check that nothing was created or updated (idempotence);
3. run a few warm-up searches, then 200 mixed searches through ``catalog.items.service.search``, each
   timed on its own with ``time.perf_counter`` (a fresh session per query, as an API request has), and
   report p50 / p95 / max.

Targets (acceptance): import of the 10k-item file <= 60 s; search p95 <= 30 ms on both backends.

    uv run python bench/catalog_bench.py                      # 10,000 items / 200,000 fields, both backends
    uv run python bench/catalog_bench.py --items 500          # a quick run
    uv run python bench/catalog_bench.py --backend sqlite --catalog /tmp/cat.yaml

This is a benchmark, not a test: it prints figures (and exits 1 only when idempotence fails or, with
``--strict``, when a target is missed).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_catalog import CROSS_TAGS, DOMAINS, write_catalog

from catalog.db import make_engine, session_scope
from catalog.declarations.service import import_catalog, read_catalog_file
from catalog.items.schemas import SearchQuery
from catalog.items.service import search
from catalog.migrate import upgrade

IMPORT_TARGET_S = 60.0
SEARCH_P95_TARGET_MS = 30.0
POSTGRES_ADMIN_URL = os.environ.get(
    "DATASHARE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ACTOR = "bench:catalog"


# --------------------------------------------------------------------------------------------------
# Databases


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A new, empty database of this run's own; removed afterwards."""
    if backend == "sqlite":
        path = workdir / f"bench_{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"datashare_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        try:
            yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_version(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return str(connection.scalar(text("SHOW server_version")))
        return str(connection.scalar(text("select sqlite_version()")))


# --------------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True)
class Query:
    kind: str
    query: SearchQuery


KEYWORDS = ["人口", "法人", "房屋", "社保", "医疗", "教育", "交通", "环境", "诉求", "企业", "车辆", "养老",
            "就业", "税务", "信用", "监测", "登记", "许可", "学校", "救助", "户籍", "租赁", "违法",
            "消防"]  # fmt: skip
FIELD_TERMS = ["公民身份号码", "联系电话", "统一社会信用代码", "车牌号码", "银行卡号", "监护人",
               "产权人姓名", "事件编号", "缴费基数", "诊断编码", "phone", "address", "plate", "resident id",
               "网格编码"]  # fmt: skip
NO_MATCH = ["量子计算", "火星基地", "zzqx", "区块链挖矿", "不存在的数据项", "飞艇"]
SORTS = ["code", "-code", "title", "-title", "level", "-level", "updated_at", "-updated_at"]


def mixed_queries(departments: list[str], count: int, seed: int) -> list[Query]:
    """A deterministic mix of what people do in the catalog search box and its filters."""
    rng = random.Random(seed)
    tags = sorted({tag for domain in DOMAINS.values() for tag in domain.tags} | set(CROSS_TAGS))

    def filters() -> dict[str, Any]:
        options: list[dict[str, Any]] = [
            {"department": rng.choice(departments)},
            {"max_level": rng.randint(1, 3)},
            {"level": rng.randint(1, 4)},
            {"sharing_type": rng.choice(["unconditional", "conditional", "not_shared"])},
            {"open_data": True},
            {"status": rng.choice(["published", "in_review", "draft", "retired"])},
        ]
        chosen: dict[str, Any] = {}
        for option in rng.sample(options, rng.randint(1, 3)):
            chosen |= option
        return chosen

    makers = {
        "keyword": (0.25, lambda: {"text": rng.choice(KEYWORDS)}),
        "keyword+filters": (0.20, lambda: {"text": rng.choice(KEYWORDS), **filters()}),
        "filters": (0.15, lambda: filters()),
        "field keyword": (0.15, lambda: {"text": rng.choice(FIELD_TERMS)}),
        "tag": (
            0.10,
            lambda: {"tag": rng.choice(tags), **({"status": "published"} if rng.random() < 0.5 else {})},
        ),
        "page/sort": (
            0.10,
            lambda: {
                **({"text": rng.choice(KEYWORDS)} if rng.random() < 0.5 else {}),
                "sort": rng.choice(SORTS),
                "page": rng.randint(2, 20),
                "page_size": rng.choice([20, 50, 100]),
            },
        ),
        "no match": (0.05, lambda: {"text": rng.choice(NO_MATCH)}),
    }
    queries: list[Query] = []
    for kind, (share, make) in makers.items():
        queries += [Query(kind, SearchQuery(**make())) for _ in range(round(count * share))]
    while len(queries) < count:
        queries.append(Query("keyword", SearchQuery(text=rng.choice(KEYWORDS))))
    rng.shuffle(queries)
    return queries[:count]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --------------------------------------------------------------------------------------------------
# The run


@dataclass
class BackendResult:
    backend: str
    version: str = ""
    migrate_s: float = 0.0
    read_s: float = 0.0
    import_s: float = 0.0
    reimport_read_s: float = 0.0
    reimport_s: float = 0.0
    first_report: str = ""
    second_report: str = ""
    idempotent: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    hits_by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    timed: list[tuple[float, Query, int]] = field(default_factory=list)


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[int]]:
    """Counts the statements sent to the database (a DBAPI executemany counts once)."""
    counter = [0]

    def count(*_: Any) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", count)


def timed_import(engine: Engine, path: Path) -> tuple[float, float, Any, int]:
    """As `datashare catalog import`: read (parse + validate) then import in one committed unit of work."""
    with counting_statements(engine) as statements:
        started = time.perf_counter()
        catalog = read_catalog_file(path)
        read_done = time.perf_counter()
        with session_scope(engine) as session:
            report = import_catalog(session, catalog, ACTOR, by_officer=True)
        finished = time.perf_counter()
    return read_done - started, finished - started, report, statements[0]


def describe(report: Any) -> str:
    return (
        f"{report.items.created} created, {report.items.updated} updated, "
        f"{report.items.unchanged} unchanged, {report.departments_changed} departments changed"
    )


def run_backend(
    backend: str, path: Path, queries: list[Query], warmup: int, workdir: Path, analyze: bool
) -> BackendResult:
    result = BackendResult(backend)
    with fresh_database(backend, workdir) as url:
        engine = make_engine(url)
        try:
            result.version = server_version(engine)
            started = time.perf_counter()
            upgrade(engine)
            result.migrate_s = time.perf_counter() - started
            print(f"[{backend}] {backend} {result.version}, migrated in {result.migrate_s:.2f} s", flush=True)

            result.read_s, result.import_s, report, statements = timed_import(engine, path)
            result.first_report = describe(report)
            print(
                f"[{backend}] import:    {result.import_s:7.2f} s  (read+validate {result.read_s:.2f} s, "
                f"database {result.import_s - result.read_s:.2f} s, {statements} statements)  "
                f"{result.first_report}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            result.reimport_read_s, result.reimport_s, again, statements = timed_import(engine, path)
            result.second_report = describe(again)
            result.idempotent = again.items.created == 0 and again.items.updated == 0
            print(
                f"[{backend}] re-import: {result.reimport_s:7.2f} s  "
                f"(read+validate {result.reimport_read_s:.2f} s, "
                f"database {result.reimport_s - result.reimport_read_s:.2f} s, {statements} statements)  "
                f"{result.second_report}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if analyze and backend == "postgresql":
                with engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()

            for query in queries[:warmup]:
                with Session(engine) as session:
                    search(session, query.query)
            for query in queries:
                with Session(engine) as session:
                    started = time.perf_counter()
                    page = search(session, query.query)
                    elapsed_ms = (time.perf_counter() - started) * 1000
                result.latencies_ms.append(elapsed_ms)
                result.timed.append((elapsed_ms, query, page.total))
                result.by_kind[query.kind].append(elapsed_ms)
                result.hits_by_kind[query.kind].append(page.total)
            lat = result.latencies_ms
            print(
                f"[{backend}] search ({len(lat)} queries after {warmup} warm-up): "
                f"p50 {percentile(lat, 50):.2f} ms, p95 {percentile(lat, 95):.2f} ms, max {max(lat):.2f} ms; "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            print(f"[{backend}]   {'kind':<16}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'mean hits':>11}")
            for kind in sorted(result.by_kind):
                values = result.by_kind[kind]
                hits = statistics.mean(result.hits_by_kind[kind])
                print(
                    f"[{backend}]   {kind:<16}{len(values):>4}{percentile(values, 50):>9.2f}"
                    f"{percentile(values, 95):>9.2f}{max(values):>9.2f}{hits:>11.0f}"
                )
            print(f"[{backend}]   slowest:")
            for elapsed_ms, query, total in sorted(result.timed, key=lambda timed: -timed[0])[:5]:
                shown = query.query.model_dump(exclude_defaults=True, mode="json")
                print(f"[{backend}]   {elapsed_ms:8.2f} ms  {total:>5} hits  {query.kind}: {shown}")
        finally:
            engine.dispose()
    return result


def machine_facts() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    import pydantic
    import sqlalchemy
    import yaml

    return [
        f"date:     {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine:  nproc {usable} ({os.cpu_count()} online), CPU {model}{memory}, load {os.getloadavg()[0]:.2f}",
        f"software: Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"pydantic {pydantic.VERSION}, PyYAML {yaml.__version__} (libyaml {yaml.__with_libyaml__}), "
        f"sqlite3 {sqlite3.sqlite_version}",
    ]


def summary(results: list[BackendResult], items: int, full_scale: bool) -> tuple[list[str], bool]:
    rows = [("backend", "measure", "value", "target", "result")]
    met = True
    for result in results:
        ok = result.import_s <= IMPORT_TARGET_S
        rows.append((result.backend, f"import {items} items", f"{result.import_s:.2f} s",
                     f"<= {IMPORT_TARGET_S:.0f} s", "PASS" if ok else "MISS"))  # fmt: skip
        rows.append((result.backend, "re-import (no change)", f"{result.reimport_s:.2f} s", "idempotent",
                     "PASS" if result.idempotent else "FAIL"))  # fmt: skip
        p95 = percentile(result.latencies_ms, 95)
        rows.append((result.backend, "search p50", f"{percentile(result.latencies_ms, 50):.2f} ms", "", ""))
        rows.append((result.backend, "search p95", f"{p95:.2f} ms", f"<= {SEARCH_P95_TARGET_MS:.0f} ms",
                     "PASS" if p95 <= SEARCH_P95_TARGET_MS else "MISS"))  # fmt: skip
        rows.append((result.backend, "search max", f"{max(result.latencies_ms):.2f} ms", "", ""))
        met = met and ok and p95 <= SEARCH_P95_TARGET_MS
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if not full_scale:
        lines.append("(not the acceptance scale of 10,000 items / 200,000 fields / 100 departments)")
    return lines, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Catalog import and search benchmark.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--fields-per-item", type=int, default=20)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--catalog", type=Path, help="use (or create, if missing) this catalog file")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE the PostgreSQL database before searching")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    print("== catalog benchmark ==")
    for line in machine_facts():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="datashare_bench_"))
    try:
        path = args.catalog or workdir / "catalog.yaml"
        if not path.exists():
            started = time.perf_counter()
            data = write_catalog(path, args.items, args.fields_per_item, args.departments, args.seed)
            print(f"generated {path} in {time.perf_counter() - started:.1f} s")
        else:
            print(f"using existing {path} (its own size, not --items, applies)")
            data = read_catalog_file(path).model_dump(mode="json", include={"departments", "items"})
        items = len(data["items"])
        fields = sum(len(item["fields"]) for item in data["items"])
        departments = [department["code"] for department in data["departments"]]
        print(
            f"catalog:  {len(departments)} departments, {items} items, {fields} fields, "
            f"{path.stat().st_size / 1e6:.1f} MB YAML"
        )
        del data
        queries = mixed_queries(departments, args.queries, args.seed)
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        results = [run_backend(b, path, queries, args.warmup, workdir, args.analyze) for b in backends]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    full_scale = items == 10_000 and fields == 200_000 and len(departments) == 100
    lines, met = summary(results, items, full_scale)
    print("\n== summary ==")
    for line in lines:
        print(line)
    if not all(result.idempotent for result in results):
        print("re-importing the same file changed items: the import is not idempotent")
        return 1
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
