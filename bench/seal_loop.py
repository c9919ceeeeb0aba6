"""A sealing loop beside a running platform (``bench/http_bench.py --seal``): every ``--interval`` seconds it seals
what is safe to seal and publishes the head, as the seal_audit DAG does every five minutes, only far more often.
It prints ``ready`` once set up; on SIGTERM it seals one last time, verifies the whole chain and prints one JSON
line: seals, events and blocks sealed, the seals' durations and the verification.

    DATASHARE_DATABASE_URL=postgresql+psycopg://… python bench/seal_loop.py --data-dir /tmp/x --interval 1
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.audit import chain, heads, verification  # noqa: E402
from catalog.audit.schemas import SealReport  # noqa: E402
from catalog.audit.signing import platform_key, trusted_keys  # noqa: E402
from catalog.db import make_engine, session_scope  # noqa: E402
from catalog.settings import Settings  # noqa: E402


def seal_once(engine: Any, settings: Settings) -> SealReport:
    with session_scope(engine) as session:
        report = chain.seal(session, platform_key(settings), block_size=settings.audit_block_size,
                            wait_seconds=settings.audit_seal_wait_seconds)  # fmt: skip
    if report.head is not None:
        heads.publish(settings.resolved_audit_heads_file, report.head)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)  # the database from DATASHARE_DATABASE_URL
    engine = make_engine(settings.resolved_database_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seal_once(engine, settings)  # what the set-up wrote (ingestion, subscription): not part of the figures
    print("ready", flush=True)
    durations: list[float] = []
    sealed = blocks = waited = 0
    while not stop.is_set():
        started = time.perf_counter()
        report = seal_once(engine, settings)
        durations.append(time.perf_counter() - started)
        sealed, blocks, waited = sealed + report.sealed_rows, blocks + report.sealed_blocks, waited + report.waiting
        stop.wait(max(0.0, args.interval - durations[-1]))
    final = seal_once(engine, settings)
    started = time.perf_counter()
    with session_scope(engine) as session:
        result = verification.verify(session, trusted_keys=trusted_keys(settings),
                                     heads_file=settings.resolved_audit_heads_file, by="bench")  # fmt: skip
        checked = {"ok": result.ok, "events": result.rows_checked, "blocks": result.blocks_checked,
                   "unsealed": result.unsealed_count, "seconds": round(time.perf_counter() - started, 2),
                   "failures": result.failures[:3]}  # fmt: skip
    engine.dispose()
    durations.sort()
    print(json.dumps({"seals": len(durations), "sealed_events": sealed + final.sealed_rows,
                      "sealed_blocks": blocks + final.sealed_blocks, "seals_that_waited": waited,
                      "seal_ms_p50": round(durations[len(durations) // 2] * 1000, 1) if durations else None,
                      "seal_ms_max": round(durations[-1] * 1000, 1) if durations else None,
                      "verify": checked}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
