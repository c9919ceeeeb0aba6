"""The audit chain at scale: 1,000,000 audit events generated on a fresh PostgreSQL database (one INSERT … SELECT
over generate_series, every id drawn as requests draw them), sealed into blocks of 10,000, then the whole chain
verified as `datashare audit verify` does it (events streamed through a server-side cursor). Prints the times, the
rates and the verifying process's peak memory.

    uv run python bench/audit_bench.py                          # 1,000,000 events, PostgreSQL
    uv run python bench/audit_bench.py --events 200000 --backend sqlite

Target (issue 11): verify 1,000,000 events on PostgreSQL in <= 30 s, memory bounded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts  # noqa: E402

from catalog.audit import chain, heads, verification  # noqa: E402
from catalog.audit import service as audit  # noqa: E402
from catalog.audit.models import AuditEvent  # noqa: E402
from catalog.audit.signing import load_key  # noqa: E402
from catalog.db import make_engine, session_scope  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402

VERIFY_TARGET_S = 30.0
# Reads of masked pages for the most part, with the decisions and refusals a busy platform records between them.
GENERATE = text("""
    INSERT INTO audit_event (at, principal, department, action, outcome, item_code, version, subscription_id,
                             fields_returned, fields_masked, rows, detail)
    SELECT timestamptz '2026-11-01 00:00:00+00' + g * interval '2.5 seconds' + (g % 997) * interval '1 microsecond',
           CASE WHEN g % 3 = 0 THEN 'token:' || (g % 320) ELSE 'user:bench-user-' || (g % 2000) END,
           'dept' || lpad((g % 100)::text, 3, '0'),
           CASE WHEN g % 50 = 0 THEN 'subscription.approve' WHEN g % 97 = 0 THEN 'classification.decide' ELSE 'data.read' END,
           CASE WHEN g % 211 = 0 THEN 'denied' ELSE 'allowed' END,
           'BENCH-' || lpad((g % 10000)::text, 5, '0'),
           1 + g % 7,
           g % 10000,
           CAST('["事件编号", "事件类型", "所属社区", "登记日期"]' AS json),
           CAST(CASE WHEN g % 2 = 0 THEN '["诉求人电话", "公民身份号码"]' ELSE '[]' END AS json),
           100,
           json_build_object('after', g % 100000, 'limit', 100, 'format', 'json',
                             'filters', json_build_object('所属社区', '六和社区', 'since', '2026-01-01'))
    FROM generate_series(1, :count) AS g
""")


def generate(engine: Engine, events: int) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(GENERATE, {"count": events})
            connection.exec_driver_sql("ANALYZE audit_event")
        return
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for at in range(0, events, 10_000):
        rows = [audit.event(f"user:bench-user-{n % 2000}", f"dept{n % 100:03d}", "data.read", "allowed",
                            item_code=f"BENCH-{n % 10000:05d}", version=1 + n % 7, subscription_id=n % 10000,
                            fields_returned=["事件编号", "事件类型"], fields_masked=["诉求人电话"], rows=100,
                            after=n % 100000, limit=100) | {"at": start + timedelta(seconds=n)}
                for n in range(at, min(events, at + 10_000))]  # fmt: skip
        with engine.begin() as connection:
            connection.execute(insert(AuditEvent), rows)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(url: str, events: int, block_size: int, workdir: Path) -> bool:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    generate(engine, events)
    print(f"  generated {events:,} events in {time.perf_counter() - started:.1f} s")
    key = load_key(workdir / "signing-key.pem", create=True, strict=True)
    started, before = time.perf_counter(), peak_mb()
    with session_scope(engine) as session:
        report = chain.seal(session, key, block_size=block_size, wait_seconds=30)
    seal_s = time.perf_counter() - started
    assert report.head is not None
    heads.publish(workdir / "heads.jsonl", report.head)
    print(f"  sealed {report.sealed_rows:,} events into {report.sealed_blocks} blocks in {seal_s:.1f} s "
          f"({report.sealed_rows / seal_s:,.0f} events/s), peak RSS {peak_mb():.0f} MB (was {before:.0f} MB)")  # fmt: skip
    started, before = time.perf_counter(), peak_mb()
    cpu = time.process_time()
    with session_scope(engine) as session:
        result = verification.verify(session, trusted_keys=frozenset([key.public_key]),
                                     heads_file=workdir / "heads.jsonl", by="bench")  # fmt: skip
        ok, rows, blocks = result.ok, result.rows_checked, result.blocks_checked
    verify_s, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    met = ok and verify_s <= VERIFY_TARGET_S
    print(f"  verified {blocks} blocks, {rows:,} events in {verify_s:.1f} s ({rows / verify_s:,.0f} events/s, "
          f"Python CPU {cpu:.1f} s), ok={ok}, peak RSS {peak_mb():.0f} MB (was {before:.0f} MB)  "
          f"[{'PASS' if met else 'MISS'}: <= {VERIFY_TARGET_S:.0f} s]")  # fmt: skip
    return met


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--block-size", type=int, default=10_000)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    print("\n".join(machine_facts()))
    with tempfile.TemporaryDirectory() as folder, fresh_database(args.backend, Path(folder)) as url:
        print(f"[{args.backend}]")
        return 0 if run(url, args.events, args.block_size, Path(folder)) else 1


if __name__ == "__main__":
    sys.exit(main())
