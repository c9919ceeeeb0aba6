"""Authorization decisions per second, in process: 100 departments, 2,000 users, 10,000 items and 10,000
active subscriptions. A decision is what a data read decides before it touches a row, through the API's own
code: the change log polled when due, the Casbin check of the caller's role (policy from the database,
grouping relations only) and the grant from the item's active subscriptions, all remembered in the process.

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

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile  # noqa: E402
from generate_catalog import generate_catalog  # noqa: E402

from catalog.access.models import CasbinRule, UserAccount  # noqa: E402
from catalog.access.policy import bump_revision  # noqa: E402
from catalog.access.service import Principal  # noqa: E402
from catalog.db import make_engine, session_scope, utcnow  # noqa: E402
from catalog.declarations.schemas import CatalogFile  # noqa: E402
from catalog.declarations.service import import_catalog  # noqa: E402
from catalog.delivery.access_cache import AccessCache  # noqa: E402
from catalog.delivery.service import grant_for  # noqa: E402
from catalog.departments.models import Department  # noqa: E402
from catalog.errors import DomainError  # noqa: E402
from catalog.ingest.models import ItemVersion  # noqa: E402
from catalog.items.models import CatalogItem, ItemField  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402
from catalog.subscriptions.models import Subscription  # noqa: E402


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
    fields_of = publish_every_item(session)
    now = utcnow()
    rows: list[dict[str, object]] = []
    pairs: set[tuple[int, int]] = set()
    while len(rows) < subscriptions:
        item_id, provider = rng.choice(items)
        consumer = departments[rng.choice(codes)]
        if consumer == provider or (item_id, consumer) in pairs:
            continue
        pairs.add((item_id, consumer))
        rows.append({"item_id": item_id, "consumer_department_id": consumer, "status": "active",
                     "fields": fields_of[item_id], "approved_level": 2, "purpose": "bench", "legal_basis": "bench", "period_days": 90,
                     "requested_by": "bench", "requested_at": now, "active_from": now,
                     "expires_at": now + timedelta(days=90), "updated_at": now})  # fmt: skip
    session.execute(insert(Subscription), rows)
    code_of = {number: code for code, number in departments.items()}
    return principals, [(item_id, code_of[consumer]) for item_id, consumer in pairs]


def publish_every_item(session: Session) -> dict[int, list[str]]:
    """A current version for every item (the decision reads its column list, never its rows); field names."""
    fields: dict[int, list[dict[str, object]]] = {}
    rows = session.execute(
        select(ItemField.item_id, ItemField.name, ItemField.data_type, ItemField.level).order_by(ItemField.position)
    )
    for row in rows:
        declared = fields.setdefault(row.item_id, [])
        declared.append({"name": row.name, "column": f"f{len(declared) + 1}", "data_type": row.data_type,
                         "level": row.level})  # fmt: skip
    versions = [{"item_id": item_id, "number": 1, "table_name": f"bench_{item_id}", "row_count": 0,
                 "fields": declared, "published_at": utcnow()} for item_id, declared in fields.items()]  # fmt: skip
    session.execute(insert(ItemVersion), versions)
    current = select(ItemVersion.id).where(ItemVersion.item_id == CatalogItem.id).scalar_subquery()
    session.execute(update(CatalogItem).values(status="published", current_version_id=current))
    return {item_id: [str(field["name"]) for field in declared] for item_id, declared in fields.items()}


def run(url: str, decisions: int, seed: int) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    with session_scope(engine) as session:
        catalog = CatalogFile.model_validate(generate_catalog(items=10_000, fields_per_item=5, departments=100))
        import_catalog(session, catalog, actor="bench:officer", by_officer=True)
        principals, subscribed = populate(session, 2_000, 10_000, seed)
    print(f"  set-up: {time.perf_counter() - started:.1f} s")
    rng = random.Random(seed)
    by_department: dict[str, list[Principal]] = {}
    for principal in principals:
        by_department.setdefault(str(principal.department), []).append(principal)
    code_of = items_by_id(engine)
    subscribed_codes = [(code_of[item_id], department) for item_id, department in subscribed]
    codes = list(code_of.values())
    cache = AccessCache(refresh_seconds=0.5, pseudonym_key=b"bench")
    with Session(engine) as session:
        started = time.perf_counter()
        cache.refresh(session)
        for code in codes:  # a process that has served a while remembers every item it was asked about
            cache.item(session, code)
        items_loaded = time.perf_counter() - started
        started = time.perf_counter()
        for principal in principals:  # ... and the policy's answer for every caller it has seen
            cache.enforcer.allows(principal.subject, str(principal.department), "data", "read")
        first_answers = time.perf_counter() - started
        timings, allowed = [], 0
        for number in range(decisions):
            if number % 2:  # half of the requests come from a subscribed department
                code, department = rng.choice(subscribed_codes)
                principal = rng.choice(by_department[department])
            else:
                code, principal = rng.choice(codes), rng.choice(principals)
            began = time.perf_counter()
            allowed += decide(session, cache, principal, code)
            timings.append(time.perf_counter() - began)
            session.rollback()  # each request its own transaction, as in the API
        checks = []
        for _ in range(decisions):
            principal = rng.choice(principals)
            began = time.perf_counter()
            cache.enforcer.allows(principal.subject, str(principal.department), "data", "read")
            checks.append(time.perf_counter() - began)
    engine.dispose()
    return {
        "items_loaded_ms": items_loaded / len(codes) * 1000,
        "first_answer_ms": first_answers / len(principals) * 1000,
        "decisions_per_s": len(timings) / sum(timings),
        "p50_ms": percentile(timings, 50) * 1000,
        "p99_ms": percentile(timings, 99) * 1000,
        "allowed_share": allowed / len(timings),
        "casbin_checks_per_s": len(checks) / sum(checks),
        "casbin_p99_ms": percentile(checks, 99) * 1000,
    }


def decide(session: Session, cache: AccessCache, principal: Principal, code: str) -> bool:
    """What a data read decides before it touches a row (the API's own code path): the change log polled
    when due, the Casbin check, and the grant from the item's active subscriptions."""
    cache.refresh(session)
    if not cache.enforcer.allows(principal.subject, str(principal.department), "data", "read"):
        return False
    try:
        grant_for(session, cache, principal, code)
    except DomainError:
        return False
    return True


def items_by_id(engine: Engine) -> dict[int, str]:
    with session_scope(engine) as session:
        return {row.id: row.code for row in session.execute(select(CatalogItem.id, CatalogItem.code))}


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
            print(f"  a first decision costs more: loading an item {result['items_loaded_ms']:.2f} ms (3 queries), "
                  f"the policy's first answer for a caller {result['first_answer_ms']:.2f} ms")  # fmt: skip
            print(f"  decisions (Casbin + grant from the item's subscriptions): {result['decisions_per_s']:,.0f}/s, "
                  f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, "
                  f"{result['allowed_share']:.0%} allowed  [{verdict}: >= 20,000/s, p99 <= 1 ms]")  # fmt: skip
            print(f"  Casbin check alone: {result['casbin_checks_per_s']:,.0f}/s, p99 {result['casbin_p99_ms']:.3f} ms")


if __name__ == "__main__":
    main()
