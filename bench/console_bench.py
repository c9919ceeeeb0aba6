"""The web console's page times with the 10,000-item benchmark catalog, on SQLite and PostgreSQL.

For each backend: a fresh database, migrated; the generated catalog (10,000 items, 200,000 fields, 100
departments) imported as a data officer imports it; four people (a department user, that department's steward,
a data officer, an ops person); a little activity through the API (the user's subscription requests, a draft
item registered by the steward, so that the review queue has pending fields); then the API as production starts
it (``python -m api.serve``, one process) and, per person, an HTTP client signed in to the console (its cookie
jar). After a warm-up, every page is fetched ``--requests`` times, one request at a time, the pages taken in turn
(so that a busy moment of the shared machine falls on every page alike), each timed with ``time.perf_counter``
from the request sent to the whole body read (the loopback and the client's own work included: about 1 ms).

Target: pages render on the server in <= 100 ms at p95.

    .venv/bin/python bench/console_bench.py                      # 10,000 items, both backends, 200 requests a page
    .venv/bin/python bench/console_bench.py --items 500          # a quick run
    .venv/bin/python bench/console_bench.py --backend postgresql --requests 100 --catalog /tmp/cat10k.yaml

A benchmark, not a test: it prints figures; it exits 1 only when a page does not answer 200 (and, with
``--strict``, when the target is missed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog_bench import fresh_database, machine_facts, percentile, server_version  # noqa: E402
from download_bench import running_api  # noqa: E402
from generate_catalog import write_catalog  # noqa: E402

from catalog.access.service import create_user  # noqa: E402
from catalog.db import make_engine, session_scope  # noqa: E402
from catalog.declarations.service import import_catalog, read_catalog_file  # noqa: E402
from catalog.departments.models import Department  # noqa: E402
from catalog.items.models import CatalogItem, ItemField  # noqa: E402
from catalog.migrate import upgrade  # noqa: E402

TARGET_P95_MS = 100.0
PASSWORD = "bench console password 2026"
SECRET_KEY = "console-bench-secret-key-0123456789abcdef"
OFFICER_HOME = "zsj"  # the data bureau, where the demo puts the platform-wide staff
CSRF_MARK = 'name="csrf_token" value="'
SUBSCRIPTIONS = 6  # requests the department user makes


# --------------------------------------------------------------------------------------------------
# The database: catalog, people, activity


@dataclass(frozen=True)
class People:
    department: str  # the user's and the steward's
    user: str
    steward: str
    officer: str
    ops: str


@dataclass
class Prepared:
    people: People
    item: str = ""  # an item page the user reads (another department's, subscribed to)
    draft: str = ""  # the steward's draft, its fields pending review
    draft_fields: int = 0
    keyword: str = ""  # a word of the generated catalog (by default a field name)
    level: int = 3
    sharing_type: str = "conditional"
    subscriptions: list[str] = field(default_factory=list)


def choose_department(engine: Engine) -> str:
    """The department with the most items: its user and steward have the most of their own to see."""
    with session_scope(engine) as session:
        counted = (
            select(Department.code, func.count(CatalogItem.id).label("n"))
            .join(CatalogItem, CatalogItem.department_id == Department.id)
            .group_by(Department.code)
            .order_by(func.count(CatalogItem.id).desc(), Department.code)
            .limit(1)
        )
        return str(session.execute(counted).one().code)


def create_people(engine: Engine, department: str) -> People:
    with session_scope(engine) as session:
        codes = set(session.scalars(select(Department.code)))
        home = OFFICER_HOME if OFFICER_HOME in codes else department
        people = People(department, f"{department}-user", f"{department}-steward", "officer", "ops")
        for username, role, where in ((people.user, "user", department), (people.steward, "steward", department),
                                      (people.officer, "data_officer", home), (people.ops, "ops", home)):  # fmt: skip
            create_user(session, where, username, username, PASSWORD, [role], created_by="bench:console")
    return people


def api_token(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    if response.status_code != 200:
        raise SystemExit(f"POST /auth/login as {username}: HTTP {response.status_code} {response.text[:300]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def make_activity(base: str, catalog: dict[str, Any], prepared: Prepared) -> None:
    """Through the API, as the people would: the user's subscription requests, the steward's draft item."""
    people = prepared.people
    own = [item for item in catalog["items"] if item["department"] == people.department]
    others = [
        item for item in catalog["items"]
        if item["department"] != people.department and item.get("status") == "published"
        and item["sharing_type"] != "not_shared"
    ]  # fmt: skip
    unconditional = [item for item in others if item["sharing_type"] == "unconditional"]
    conditional = [item for item in others if item["sharing_type"] == "conditional"]
    half = SUBSCRIPTIONS // 2  # spread over the catalog, some unconditional (active at once), some conditional
    chosen = unconditional[:: max(1, len(unconditional) // half)][:half]
    chosen += conditional[:: max(1, len(conditional) // (SUBSCRIPTIONS - half))][: SUBSCRIPTIONS - half]
    with httpx.Client(base_url=base, timeout=60) as client:
        user = api_token(client, people.user)
        for item in chosen:
            # Low-level fields first: an unconditional item then activates at once (auto-approval up to level 2).
            fields = sorted(item["fields"], key=lambda declared: declared.get("level", 1))[:4]
            body = {"item": item["code"], "fields": [declared["name"] for declared in fields],
                    "purpose": "核对诉求人信息（基准测试）", "legal_basis": "《深圳经济特区数据条例》第四十条",
                    "period_days": 90}  # fmt: skip
            response = client.post("/subscriptions", json=body, headers=user)
            if response.status_code != 201:
                raise SystemExit(
                    f"POST /subscriptions {item['code']}: HTTP {response.status_code} {response.text[:300]}"
                )
            prepared.subscriptions.append(f"{item['code']} ({response.json()['status']})")
        prepared.item = chosen[0]["code"]

        steward = api_token(client, people.steward)
        template = max(own, key=lambda item: len(item["fields"]))
        draft = {key: value for key, value in template.items() if key not in ("status", "source_system")}
        draft["code"] = f"{people.department.upper()}-BENCH-0001"
        draft["title"] = f"{template['title']}（基准测试草稿）"
        response = client.post("/items", json=draft, headers=steward)
        if response.status_code != 201:
            raise SystemExit(f"POST /items (the steward's draft): HTTP {response.status_code} {response.text[:300]}")
        prepared.draft = draft["code"]
        prepared.draft_fields = len(draft["fields"])


def workload(url: str) -> str:
    """What the heavier pages go through: the fields pending review, and the pulled items (published, with a
    source system) whose freshness the ops page shows."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            pending = session.execute(
                select(func.count(), func.count(ItemField.item_id.distinct())).where(
                    ItemField.review_status == "pending"
                )
            ).one()
            pulled = session.scalar(
                select(func.count()).where(CatalogItem.status == "published", CatalogItem.source_system_id.is_not(None))
            )
    finally:
        engine.dispose()
    return f"{pending[0]:,} fields of {pending[1]:,} items pending review; {pulled:,} pulled items"


def analyze(url: str) -> None:
    """Statistics for every table, as autovacuum would gather them in time (the import analyzes only the tables it
    fills in bulk)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()
    print("[postgresql] ANALYZE run on every table", flush=True)


# --------------------------------------------------------------------------------------------------
# The console


@dataclass(frozen=True)
class PageSpec:
    name: str
    persona: str
    path: str
    optional: bool = False


def signed_in(base: str, username: str | None) -> httpx.Client:
    """An HTTP client with its own cookie jar, signed in to the console (None: anonymous)."""
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/console/sign-in")
    if page.status_code != 200 or CSRF_MARK not in page.text:
        raise SystemExit(f"GET /console/sign-in: HTTP {page.status_code}")
    if username is None:
        return client
    token = page.text.split(CSRF_MARK, 1)[1].split('"', 1)[0]
    response = client.post("/console/sign-in", data={"csrf_token": token, "username": username,
                                                     "password": PASSWORD})  # fmt: skip
    if response.status_code != 303:
        raise SystemExit(f"POST /console/sign-in as {username}: HTTP {response.status_code} {response.text[:300]}")
    if username not in client.get("/console/").text:
        raise SystemExit(f"signed in as {username}, but the console does not name them")
    return client


def pages(prepared: Prepared) -> list[PageSpec]:
    people = prepared.people

    def search(**query: Any) -> str:
        return "/console/?" + urlencode(query)

    return [
        PageSpec("catalog home", "user", "/console/"),
        PageSpec("search 人口", "user", search(text="人口")),
        PageSpec(f"search {prepared.keyword}", "user", search(text=prepared.keyword)),
        PageSpec(f"search department={people.department}", "user", search(department=people.department)),
        PageSpec(f"search level={prepared.level}", "user", search(level=prepared.level)),
        PageSpec(f"search sharing_type={prepared.sharing_type}", "user", search(sharing_type=prepared.sharing_type)),
        PageSpec("search page 50", "user", search(page=50)),
        PageSpec("item page", "user", f"/console/items/{prepared.item}"),
        PageSpec("subscriptions", "user", "/console/subscriptions"),
        PageSpec("review queue", "officer", "/console/review"),
        PageSpec("review item (pending)", "officer", f"/console/review/items/{prepared.draft}"),
        PageSpec("audit", "officer", "/console/audit"),
        PageSpec("tokens", "steward", "/console/tokens"),
        PageSpec("ops", "ops", "/console/ops", optional=True),
        PageSpec("ops quarantine", "ops", "/console/ops/quarantine", optional=True),
        PageSpec("sign-in", "anonymous", "/console/sign-in"),
    ]


def fetch(client: httpx.Client, spec: PageSpec) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(spec.path)
    response.read()
    return (time.perf_counter() - started) * 1000, response


def refused(spec: PageSpec, response: httpx.Response) -> SystemExit:
    body = response.text[:500].replace("\n", " ")
    return SystemExit(f"{spec.name} ({spec.persona}) GET {spec.path}: HTTP {response.status_code}, not 200: {body}")


@dataclass
class Timings:
    backend: str
    version: str
    by_page: dict[str, list[float]] = field(default_factory=dict)
    not_served: dict[str, int] = field(default_factory=dict)
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    specs: list[PageSpec] = field(default_factory=list)


def time_pages(base: str, prepared: Prepared, requests: int, warmup: int, timings: Timings) -> None:
    people = prepared.people
    usernames = {"user": people.user, "steward": people.steward, "officer": people.officer, "ops": people.ops}
    clients = {persona: signed_in(base, username) for persona, username in usernames.items()}
    clients["anonymous"] = signed_in(base, None)
    try:
        specs = []
        for spec in pages(prepared):
            for _ in range(max(1, warmup)):
                _, response = fetch(clients[spec.persona], spec)
                if response.status_code != 200:
                    break
            if response.status_code == 200:
                specs.append(spec)
            elif spec.optional:
                timings.not_served[spec.name] = response.status_code
            else:
                raise refused(spec, response)
        timings.specs = specs
        every: list[tuple[float, str, str]] = []
        timings.by_page = {spec.name: [] for spec in specs}
        for _ in range(requests):  # the pages in turn: a busy moment of the machine falls on each alike
            for spec in specs:
                elapsed, response = fetch(clients[spec.persona], spec)
                if response.status_code != 200:
                    raise refused(spec, response)
                timings.by_page[spec.name].append(elapsed)
                every.append((elapsed, spec.name, spec.path))
        timings.slowest = sorted(every, reverse=True)[:5]
    finally:
        for client in clients.values():
            client.close()


# --------------------------------------------------------------------------------------------------
# The run


def run_backend(backend: str, path: Path, catalog: dict[str, Any], args: argparse.Namespace, workdir: Path) -> Timings:
    with fresh_database(backend, workdir) as url:
        engine = make_engine(url)
        try:
            version = server_version(engine)
            upgrade(engine)
            started = time.perf_counter()
            with session_scope(engine) as session:
                report = import_catalog(session, read_catalog_file(path), actor="bench:officer", by_officer=True)
            print(f"[{backend}] {backend} {version}; imported {report.items.created} items in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            department = choose_department(engine)
            people = create_people(engine, department)
        finally:
            engine.dispose()
        prepared = Prepared(people, keyword=args.keyword, level=args.level, sharing_type=args.sharing_type)
        data_dir = workdir / f"data-{backend}"
        data_dir.mkdir()
        settings = {"DATASHARE_SECRET_KEY": SECRET_KEY, "DATASHARE_DATA_DIR": str(data_dir)}
        timings = Timings(backend, version)
        with running_api(url, 1, settings) as (_, base):
            make_activity(base, catalog, prepared)
            if args.analyze and backend == "postgresql":
                analyze(url)
            own = sum(item["department"] == department for item in catalog["items"])
            print(f"[{backend}] {workload(url)}", flush=True)
            print(f"[{backend}] people: {people.user}, {people.steward} ({own} items of {department}), "
                  f"{people.officer} (data_officer), {people.ops} (ops); subscriptions requested: "
                  f"{', '.join(prepared.subscriptions)}; draft {prepared.draft} with "
                  f"{prepared.draft_fields} fields pending review", flush=True)  # fmt: skip
            started = time.perf_counter()
            time_pages(base, prepared, args.requests, args.warmup, timings)
            print(f"[{backend}] {sum(map(len, timings.by_page.values()))} requests timed in "
                  f"{time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        report_backend(timings)
        return timings


def cells(text: str) -> int:
    """Terminal cells the text takes (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int) -> str:
    """Left-aligned in a column of this many cells."""
    return text + " " * max(0, width - cells(text))


def report_backend(timings: Timings) -> None:
    tag = f"[{timings.backend}]"
    width = max(cells(name) for name in [*timings.by_page, *timings.not_served, "page"]) + 2
    print(f"{tag} {'page':<{width}}{'as':<11}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    personas = {spec.name: spec.persona for spec in timings.specs}
    for name, values in timings.by_page.items():
        p95 = percentile(values, 95)
        mark = "" if p95 <= TARGET_P95_MS else "  MISS"
        print(f"{tag} {pad(name, width)}{personas[name]:<11}{len(values):>5}{percentile(values, 50):>9.1f}"
              f"{p95:>9.1f}{max(values):>9.1f}{mark}")  # fmt: skip
    for name, status in timings.not_served.items():
        print(f"{tag} {pad(name, width)}not served (HTTP {status})")
    every = [value for values in timings.by_page.values() for value in values]
    p95 = percentile(every, 95)
    verdict = "PASS" if p95 <= TARGET_P95_MS else "MISS"
    print(f"{tag} {'overall':<{width}}{'':<11}{len(every):>5}{percentile(every, 50):>9.1f}{p95:>9.1f}"
          f"{max(every):>9.1f}  [{verdict}: p95 <= {TARGET_P95_MS:.0f} ms]")  # fmt: skip
    print(f"{tag} slowest requests:")
    for elapsed, name, path in timings.slowest:
        print(f"{tag}   {elapsed:8.1f} ms  {name}: {path}")


def summary(results: list[Timings]) -> bool:
    names = list(dict.fromkeys(name for result in results for name in [*result.by_page, *result.not_served]))
    width = max(cells(name) for name in [*names, "overall"]) + 2
    print("\n== summary: p95 ms per page (target <= 100 ms) ==")
    print(f"{'page':<{width}}" + "".join(f"{result.backend:>14}" for result in results))
    met = True
    for name in names:
        row = []
        for result in results:
            if name in result.by_page:
                p95 = percentile(result.by_page[name], 95)
                met = met and p95 <= TARGET_P95_MS
                row.append(f"{p95:.1f}{'' if p95 <= TARGET_P95_MS else ' MISS'}")
            else:
                row.append("not served" if name in result.not_served else "-")
        print(pad(name, width) + "".join(f"{cell:>14}" for cell in row))
    row = []
    for result in results:
        p95 = percentile([value for values in result.by_page.values() for value in values], 95)
        row.append(f"{p95:.1f} {'PASS' if p95 <= TARGET_P95_MS else 'MISS'}")
    print(pad("overall", width) + "".join(f"{cell:>14}" for cell in row))
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The web console's page times with the benchmark catalog.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--fields-per-item", type=int, default=20)
    parser.add_argument("--departments", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page first")
    parser.add_argument("--catalog", type=Path, help="use (or create, if missing) this catalog file")
    parser.add_argument("--keyword", default="公民身份号码", help="a keyword of the generated catalog (a field name)")
    parser.add_argument("--level", type=int, default=3, help="the level filter's value")
    parser.add_argument("--sharing-type", default="conditional", help="the sharing type filter's value")
    parser.add_argument("--analyze", action="store_true",
                        help="ANALYZE the PostgreSQL database before timing (as autovacuum would in time); by default "
                        "it is timed as the import and the activity leave it")  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="exit 1 when a page misses the target")
    args = parser.parse_args(argv)

    print("== console benchmark ==")
    for line in machine_facts():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="datashare_console_bench_"))
    try:
        path = args.catalog or workdir / "catalog.yaml"
        if path.exists():
            print(f"using existing {path} (its own size, not --items, applies)")
            catalog = read_catalog_file(path).model_dump(mode="json", include={"departments", "items"})
        else:
            started = time.perf_counter()
            catalog = write_catalog(path, args.items, args.fields_per_item, args.departments, args.seed)
            print(f"generated {path} in {time.perf_counter() - started:.1f} s")
        fields = sum(len(item["fields"]) for item in catalog["items"])
        print(f"catalog:  {len(catalog['departments'])} departments, {len(catalog['items'])} items, {fields} fields, "
              f"{path.stat().st_size / 1e6:.1f} MB YAML")  # fmt: skip
        print(f"timing:   {args.requests} requests per page after {args.warmup} warm-up, one at a time, the pages "
              f"in turn; one API process (python -m api.serve)", flush=True)  # fmt: skip
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        results = [run_backend(backend, path, catalog, args, workdir) for backend in backends]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    met = summary(results)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
