"""Authorization decisions per second, in process: 100 departments, 2,000 users, 10,000 items and 10,000
active subscriptions. A decision is what a data read decides before it touches a row: the Casbin check of
the caller's role (policy from the database, grouping relations only) and the look-up of the caller's
department's active subscription to the item.

    uv run python bench/authz_bench.py                       # PostgreSQL and SQLite
    uv run python bench/authz_bench.py --backend sqlite --decisions 20000

Targets (issue 4): >= 20,000 decisions/s with p99 <= 1 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile  # noqa: E402
from generate_catalog import generate_catalog  # noqa: E402

from catalog.access.models import CasbinRule, UserAccount  # noqa: E402
from catalog.access.policy import PolicyEnforcer, bump_revision  # noqa: E402
from catalog.access.service import Principal  # noqa: E402
from catalog.db import make_engine, session_scope, utcnow  # noqa: E402
from catalog.declarations.schemas import CatalogFile  # noqa: E402
from catalog.declarations.service import import_catalog  # noqa: E402
from catalog.departments.models import Department  # noqa: E402
from catalog.items.models import CatalogItem  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.subscriptions.models import Subscription  # noqa: E402
from catalog.subscriptions.service import active_for  # noqa: E402


def populate(
    session: Session, users: int, subscriptions: int, seed: int
) -> tuple[list[Principal], list[tuple[int, str]]]:
    """Users with roles (bulk: hashing 2,000 argon2 passwords measures nothing here) and active subscriptions."""
    rng = random.Random(seed)
    departments = {row.code: row.id for row in session.execute(select(Department.code, Department.id))}
    codes = sorted(departments)
    roles = ["user", "steward", "user", "user"]
    principals, accounts, bindings = [], [], []
    for number in range(users):
        department = codes[number % len(codes)]
        username = f"bench-{number}"
        accounts.append({"department_id": departments[department], "username": username, "display_name": username,
                         "password_hash": "-", "active": True, "created_at": utcnow()})  # fmt: skip
        bindings.append({"ptype": "g", "v0": f"user:{username}", "v1": roles[number % len(roles)], "v2": department})
        principals.append(Principal(f"user:{username}", department))
    session.execute(insert(UserAccount), accounts)
    session.execute(insert(CasbinRule), bindings)
    bump_revision(session)
    items = [(row.id, row.department_id) for row in session.execute(select(CatalogItem.id, CatalogItem.department_id))]
    now = utcnow()
    rows, pairs = [], set()
    while len(rows) < subscriptions:
        item_id, provider = rng.choice(items)
        consumer = departments[rng.choice(codes)]
        if consumer == provider or (item_id, consumer) in pairs:
            continue
        pairs.add((item_id, consumer))
        rows.append({"item_id": item_id, "consumer_department_id": consumer, "status": "active", "fields": ["x"],
                     "approved_level": 3, "purpose": "bench", "legal_basis": "bench", "period_days": 90,
                     "requested_by": "bench", "requested_at": now, "active_from": now,
                     "expires_at": now + timedelta(days=90), "updated_at": now})  # fmt: skip
    session.execute(insert(Subscription), rows)
    code_of = {number: code for code, number in departments.items()}
    return principals, [(item_id, code_of[consumer]) for item_id, consumer in pairs]


def run(url: str, decisions: int, seed: int) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    with session_scope(engine) as session:
        catalog = CatalogFile.model_validate(generate_catalog(items=10_000, fields_per_item=5, departments=100))
        import_catalog(session, catalog, actor="bench")
        principals, subscribed = populate(session, 2_000, 10_000, seed)
    print(f"  set-up: {time.perf_counter() - started:.1f} s")
    rng = random.Random(seed)
    by_department: dict[str, list[Principal]] = {}
    for principal in principals:
        by_department.setdefault(str(principal.department), []).append(principal)
    item_ids = list(session_scope_items(engine))
    enforcer = PolicyEnforcer()
    timings, allowed = [], 0
    with Session(engine) as session:
        enforcer.refresh(session)
        for number in range(decisions):
            if number % 2:  # half of the requests come from a subscribed department
                item_id, department = rng.choice(subscribed)
                principal = rng.choice(by_department[department])
            else:
                item_id, principal = rng.choice(item_ids), rng.choice(principals)
            began = time.perf_counter()
            enforcer.refresh(session)  # what every request does: one read of the policy revision
            ok = enforcer.allows(principal.subject, str(principal.department), "data", "read") and (
                active_for(session, item_id, str(principal.department)) is not None
            )
            timings.append(time.perf_counter() - began)
            allowed += ok
        checks = []
        for _ in range(decisions):
            principal = rng.choice(principals)
            began = time.perf_counter()
            enforcer.allows(principal.subject, str(principal.department), "data", "read")
            checks.append(time.perf_counter() - began)
    engine.dispose()
    return {
        "decisions_per_s": len(timings) / sum(timings),
        "p50_ms": percentile(timings, 50) * 1000,
        "p99_ms": percentile(timings, 99) * 1000,
        "allowed_share": allowed / len(timings),
        "casbin_checks_per_s": len(checks) / sum(checks),
        "casbin_p99_ms": percentile(checks, 99) * 1000,
    }


def session_scope_items(engine: object) -> list[int]:
    with session_scope(engine) as session:  # type: ignore[arg-type]
        return list(session.scalars(select(CatalogItem.id)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("\n".join(machine_facts()))
    for backend in ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory() as folder, fresh_database(backend, Path(folder)) as url:
            print(f"[{backend}]")
            result = run(url, args.decisions, args.seed)
            verdict = "PASS" if result["decisions_per_s"] >= 20_000 and result["p99_ms"] <= 1 else "MISS"
            print(f"  decisions (Casbin + subscription look-up): {result['decisions_per_s']:,.0f}/s, "
                  f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, "
                  f"{result['allowed_share']:.0%} allowed  [{verdict}: >= 20,000/s, p99 <= 1 ms]")  # fmt: skip
            print(f"  Casbin check alone: {result['casbin_checks_per_s']:,.0f}/s, p99 {result['casbin_p99_ms']:.3f} ms")


if __name__ == "__main__":
    main()
