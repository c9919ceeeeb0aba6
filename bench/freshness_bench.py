"""Freshness benchmark: every pulled item's status, the counts and the notification transitions for 10,000 items.

For each backend (SQLite file, PostgreSQL database of its own), on a fresh database migrated by Alembic:

1. import a generated catalog (``bench/generate_catalog.py``: 10,000 items over 100 departments, its mix of presets
   and cron expressions; one field each, as fields play no part here), then make every item published with a source
   system of its department, as the pipelines pull them;
2. give the feeds what a running platform has: most items received an export within their last period (on time),
   some one or two periods ago (late, overdue), 5 % never (measured from their publication); all were checked;
3. time, each in a fresh session: ``item_freshness`` (all items), one department's, ``freshness_of`` one item,
   ``status_counts`` (what a metrics scrape reads), and ``record_transitions`` twice: the first notes every item
   behind (thousands of rows written), the second finds nothing new (what every later run costs).

    uv run python bench/freshness_bench.py                      # both backends
    uv run python bench/freshness_bench.py --backend sqlite --items 2000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter
from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, server_version  # noqa: E402
from generate_catalog import generate_catalog  # noqa: E402

from catalog.db import make_engine, session_scope, utcnow  # noqa: E402
from catalog.declarations.schemas import CatalogFile  # noqa: E402
from catalog.declarations.service import import_catalog  # noqa: E402
from catalog.departments.models import SourceSystem  # noqa: E402
from catalog.items.models import CatalogItem, ItemChange  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.ops import freshness  # noqa: E402
from catalog.ops.freshness import CRON_PRESETS  # noqa: E402
from catalog.ops.models import ItemFeed  # noqa: E402

GRACE = timedelta(minutes=60)
TARGET_S = 1.0  # all 10,000 items, one call (an API request, a CLI run, a metrics scrape)


def prepare(session: Session, seed: int) -> Counter[str]:
    """Every item published and pulled; feeds as a running platform has them. Returns the intended mix."""
    rng = random.Random(seed)
    systems: dict[int, int] = {}
    for system_id, department_id in session.execute(select(SourceSystem.id, SourceSystem.department_id)):
        systems.setdefault(department_id, system_id)
    items = session.execute(select(CatalogItem.id, CatalogItem.department_id, CatalogItem.update_frequency)).all()
    session.execute(
        update(CatalogItem),
        [{"id": item_id, "status": "published", "source_system_id": systems[department_id]}
         for item_id, department_id, _ in items],
    )  # fmt: skip
    now = utcnow()
    session.execute(update(ItemChange).values(changed_at=now - timedelta(days=400)))  # published long ago
    recent = {frequency: scheduled_before(frequency, now) for frequency in {row[2] for row in items}}
    feeds, mix = [], Counter[str]()
    for item_id, _, frequency in items:
        kind = rng.choices(["on_time", "late", "overdue", "never"], [80, 8, 7, 5])[0]
        mix[kind] += 1
        if kind == "never":
            feeds.append({"item_id": item_id, "last_checked_at": now - timedelta(minutes=5),
                          "last_check_outcome": "no_export"})  # fmt: skip
            continue
        # Received by the pull at the last scheduled time (on time), the one before (late, once the grace has
        # passed), or three before (overdue).
        received = recent[frequency][{"on_time": 0, "late": 1, "overdue": 3}[kind]] + timedelta(
            seconds=rng.randint(5, 600)
        )
        feeds.append({"item_id": item_id, "last_received_at": min(received, now), "last_published_at": received,
                      "last_checked_at": received, "last_check_outcome": "published"})  # fmt: skip
    session.execute(insert(ItemFeed), [{"last_received_at": None, "last_published_at": None, **row} for row in feeds])
    return mix


def scheduled_before(frequency: str, now: datetime) -> list[datetime]:
    """The four latest scheduled times at or before ``now``, newest first."""
    times = croniter(CRON_PRESETS.get(frequency, frequency), now)
    return [times.get_prev(datetime) for _ in range(4)]


def timed(engine: Engine, work: Callable[[Session], Any], repeat: int = 3, commit: bool = False) -> tuple[float, Any]:
    """The median of ``repeat`` runs, each in a fresh session (committed when ``commit``), and the last result."""
    seconds, result = [], None
    for _ in range(repeat):
        with Session(engine) as session:
            started = time.perf_counter()
            result = work(session)
            if commit:
                session.commit()
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def run_backend(backend: str, args: argparse.Namespace, catalog: CatalogFile, workdir: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    with fresh_database(backend, workdir) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            started = time.perf_counter()
            with session_scope(engine) as session:
                drafts = [item.model_copy(update={"status": None}) for item in catalog.items]
                import_catalog(session, catalog.model_copy(update={"items": drafts}), actor="bench:freshness")
                mix = prepare(session, args.seed)
                frequencies = session.scalar(select(func.count(func.distinct(CatalogItem.update_frequency))))
            print(f"[{backend}] {server_version(engine)}; load {os.getloadavg()[0]:.2f}; {sum(mix.values())} items "
                  f"({frequencies} distinct frequencies) ready in {time.perf_counter() - started:.1f} s; intended "
                  f"mix {dict(mix)}", flush=True)  # fmt: skip
            if backend == "postgresql":  # statistics, as autovacuum keeps them (a fresh import has none)
                with engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
            with Session(engine) as session:
                code = session.scalar(select(CatalogItem.code).order_by(CatalogItem.id).limit(1))
                department_code = freshness.item_freshness(session, grace=GRACE)[0].department

            def everything(session: Session) -> Any:
                return freshness.item_freshness(session, grace=GRACE)

            seconds, assessed = timed(engine, everything)
            counted = Counter(entry.status.value for entry in assessed)
            show("item_freshness: every item", seconds, f"{len(assessed)} items: {dict(counted)}")
            figures["all items"] = seconds
            seconds, shown = timed(
                engine, lambda s: freshness.item_freshness(s, department=department_code, grace=GRACE)
            )
            show(f"item_freshness: department {department_code}", seconds, f"{len(shown)} items")
            show(
                "freshness_of: one item", timed(engine, lambda s: freshness.freshness_of(s, str(code), grace=GRACE))[0]
            )
            seconds, counts = timed(engine, lambda s: freshness.status_counts(s, grace=GRACE))
            show("status_counts (a metrics scrape)", seconds, f"{len(counts)} (department, status) gauges")
            figures["status_counts"] = seconds
            first, entered = timed(engine, lambda s: freshness.record_transitions(s, grace=GRACE), 1, commit=True)
            show("record_transitions: first run", first, f"{len(entered)} items entered a late status, committed")
            again, none = timed(engine, lambda s: freshness.record_transitions(s, grace=GRACE), 3, commit=True)
            show("record_transitions: later runs", again, f"{len(none)} new")
            figures["record_transitions (later runs)"] = again
        finally:
            engine.dispose()
    return figures


def show(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label:<42} {seconds * 1000:8.1f} ms  {note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Freshness benchmark.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    for line in machine_facts():
        print(line)
    raw = generate_catalog(items=args.items, fields_per_item=1, departments=args.departments, seed=args.seed)
    catalog = CatalogFile.model_validate(raw)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    missed = False
    with tempfile.TemporaryDirectory(prefix="freshness-bench-") as workdir:
        for backend in backends:
            figures = run_backend(backend, args, catalog, Path(workdir))
            missed |= figures["all items"] > TARGET_S
    print(f"target: every item within {TARGET_S:.0f} s: {'missed' if missed else 'met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
