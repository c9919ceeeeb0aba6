"""The utilisation figures with 10,000 items and 10,000,000 audit events on PostgreSQL.

A fresh database, migrated; 100 departments, 10,000 items (90 % published, created over the last two years) and
30,000 subscriptions (three consumers per item; 60 % active, the rest expired, revoked, rejected or pending, asked
for over the last year) written through the ORM; then 10,000,000 audit events inserted with ``generate_series``
over the last 365 days (the append-only triggers refuse only updates and deletes): 85 % uses of an item by a
subscription's department, drawn with a skew (a few subscriptions are used far more than most; each use is a page
or a delivery), of which 80 % reads, 10 % verification look-ups and 10 % deliveries, 3 % denied or failed; 15 %
other events (sign-ins, requests). Then, timed with ``time.perf_counter``, each in its own transaction as the API
runs it:

* the one-time fold of the whole trail into the rollups (``datashare usage fold`` after an upgrade);
* ``--rounds`` times: ``--new`` more events (a busy hour), then the platform's figures (``GET /utilisation``: the
  fold of the events since the last one included), a department's (``GET /utilisation/departments/{code}``) and the
  twelve months' history (the console's chart).

Target: the platform's figures, fold included, in <= 2 s.

    .venv/bin/python bench/utilisation_bench.py                         # 10,000 items, 10,000,000 events
    .venv/bin/python bench/utilisation_bench.py --events 1000000        # a quick run

A benchmark, not a test: it prints figures; with ``--strict`` it exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, server_version  # noqa: E402

from catalog.db import make_engine, session_scope, utcnow  # noqa: E402
from catalog.departments.models import Department  # noqa: E402
from catalog.items.models import CatalogItem  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.subscriptions.models import Subscription  # noqa: E402
from catalog.utilisation import figures, history  # noqa: E402
from catalog.utilisation.fold import fold  # noqa: E402
from catalog.utilisation.models import UsageDay, UsageMonth  # noqa: E402

TARGET_SECONDS = 2.0
DEPARTMENTS = 100
CONSUMERS_PER_ITEM = 3
CHUNK = 1_000_000
# One audit event per n: a use (item, department of a subscription drawn with a skew) or another event. The
# subscription s (1-based) is item ((s - 1) % items) + 1 and consumer ((s - 1) / items + item * 7) % 100 + 1, as
# the subscriptions are written below.
EVENTS_SQL = """
INSERT INTO audit_event (at, principal, department, action, outcome, item_code, subscription_id, rows,
                         fields_returned, fields_masked, detail)
SELECT now() - random() * (:span * interval '1 day'), 'token:' || d, 'd' || lpad(CAST(d AS text), 3, '0'),
       CASE WHEN kind < 0.68 THEN 'data.read' WHEN kind < 0.765 THEN 'data.verify' WHEN kind < 0.85 THEN 'data.deliver'
            WHEN kind < 0.95 THEN 'login' ELSE 'subscription.request' END,
       CASE WHEN kind >= 0.85 OR refused > 0.03 THEN CASE WHEN kind >= 0.765 AND kind < 0.85 THEN 'done' ELSE 'allowed' END
            ELSE 'denied' END,
       CASE WHEN kind < 0.85 OR kind >= 0.95 THEN 'I' || lpad(CAST(item AS text), 5, '0') END,
       CASE WHEN kind < 0.85 THEN s END, CASE WHEN kind < 0.68 OR (kind >= 0.765 AND kind < 0.85) THEN rows END,
       CAST('[]' AS json), CAST('[]' AS json), CAST('{}' AS json)
FROM (SELECT s, item, (CAST((s - 1) / :items AS integer) + item * 7) % 100 + 1 AS d, kind, refused, rows
      FROM (SELECT s, (s - 1) % :items + 1 AS item, kind, refused, rows
            FROM (SELECT CAST(floor(:subscriptions * power(random(), 3)) AS integer) + 1 AS s, random() AS kind,
                         random() AS refused, CAST(1 + random() * 999 AS integer) AS rows
                  FROM generate_series(1, :count)) AS drawn) AS mapped) AS events
"""


def seed_catalog(engine: Engine, items: int) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(insert(Department), [
            {"code": f"d{number:03d}", "name_zh": f"部门{number}", "name_en": f"Department {number}", "kind": "bureau",
             "active": True, "created_at": now, "updated_at": now} for number in range(1, DEPARTMENTS + 1)])  # fmt: skip
        session.execute(insert(CatalogItem), [
            {"code": f"I{number:05d}", "title": f"数据项 {number}", "description": "", "department_id":
             number % DEPARTMENTS + 1, "update_frequency": "@daily", "sharing_type": "conditional", "open_data": False,
             "status": "published" if number % 10 else "draft", "quality": {}, "level": 2, "search_text": "",
             "created_at": now - timedelta(days=number % 730), "updated_at": now}
            for number in range(1, items + 1)])  # fmt: skip
        session.execute(insert(Subscription), [_subscription(number, items, now) for number in
                                               range(1, items * CONSUMERS_PER_ITEM + 1)])  # fmt: skip


def _subscription(number: int, items: int, now: Any) -> dict[str, Any]:
    item = (number - 1) % items + 1
    consumer = ((number - 1) // items + item * 7) % DEPARTMENTS + 1
    requested = now - timedelta(days=number * 7919 % 365, hours=number % 24)
    kind = number % 10
    status = ["active"] * 6 + ["revoked", "rejected", "requested", "active"]
    became = requested + timedelta(hours=1 + number % 96) if kind not in (7, 8) else None
    expires = (now + timedelta(days=90)) if kind < 6 else (now - timedelta(days=1)) if kind == 9 else None
    return {"item_id": item, "consumer_department_id": consumer, "status": status[kind], "fields": ["x"],
            "purpose": "bench", "legal_basis": "bench", "period_days": 90, "requested_by": "bench",
            "requested_at": requested, "active_from": became, "expires_at": expires}  # fmt: skip


def seed_events(engine: Engine, count: int, items: int, span_days: float) -> float:
    started = time.perf_counter()
    done = 0
    while done < count:
        batch = min(CHUNK, count - done)
        with engine.begin() as connection:
            connection.execute(text(EVENTS_SQL), {"count": batch, "items": items, "span": span_days,
                                                  "subscriptions": items * CONSUMERS_PER_ITEM})  # fmt: skip
        done += batch
        print(f"  {done:,} audit events written ({time.perf_counter() - started:.0f} s)", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def timed(engine: Engine, work: Callable[[Session], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    with session_scope(engine) as session:
        result = work(session)
    return time.perf_counter() - started, result


def everyone(consumer: str, provider: str) -> bool:
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description="Utilisation figures over a large audit trail on PostgreSQL.")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--new", type=int, default=5_000, help="Events added before each round of figures.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strict", action="store_true")
    arguments = parser.parse_args()
    print("Machine:", "; ".join(machine_facts()))
    with tempfile.TemporaryDirectory() as workdir, fresh_database("postgresql", Path(workdir)) as url:
        engine = make_engine(url)
        upgrade(engine)
        print(f"PostgreSQL {server_version(engine)}; {arguments.items:,} items, {arguments.events:,} audit events")
        seed_catalog(engine, arguments.items)
        written = seed_events(engine, arguments.events, arguments.items, 365)
        print(f"Seeded the audit trail in {written:.1f} s")
        seconds, folded = timed(engine, fold)
        with Session(engine) as session:
            days, months = (session.scalar(select(func.count()).select_from(model)) for model in (UsageDay, UsageMonth))
        print(f"One-time fold: {folded.events:,} events in {seconds:.1f} s -> {days:,} daily and {months:,} monthly "
              f"rollup rows")  # fmt: skip
        rounds = _rounds(engine, arguments)
        engine.dispose()
    worst = max(rounds["platform"])
    print(f"Target: platform figures (fold included) <= {TARGET_SECONDS:.1f} s: "
          f"{'met' if worst <= TARGET_SECONDS else 'MISSED'} (worst {worst:.2f} s)")  # fmt: skip
    if arguments.strict and worst > TARGET_SECONDS:
        sys.exit(1)


def _rounds(engine: Engine, arguments: argparse.Namespace) -> dict[str, list[float]]:
    kept: dict[str, list[float]] = {"platform": [], "department": [], "history": []}
    for number in range(1, arguments.rounds + 1):
        seed_events(engine, arguments.new, arguments.items, 1 / 24)
        platform_seconds, found = timed(engine, lambda session: figures.platform(session, everyone))
        department_seconds, _ = timed(engine, lambda session: figures.department(session, "d042", everyone))
        history_seconds, _ = timed(engine, lambda session: history.history(session, None, 12))
        kept["platform"].append(platform_seconds)
        kept["department"].append(department_seconds)
        kept["history"].append(history_seconds)
        whole = found.platform
        print(f"Round {number}: +{arguments.new:,} events; platform figures {platform_seconds:.2f} s (fold included), "
              f"a department's {department_seconds:.2f} s, 12 months' history {history_seconds:.2f} s; "
              f"{whole.published_items:,} published, {whole.share_subscribed:.1%} subscribed, "
              f"{whole.share_used:.1%} used, {whole.uses.reads:,} reads in 30 days")  # fmt: skip
    for name, values in kept.items():
        print(f"{name}: median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    return kept


if __name__ == "__main__":
    main()
