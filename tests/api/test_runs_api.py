"""Runs and quarantine over HTTP: who may read and decide (ops everywhere; a provider's stewards read their own
department's, and get the same 404 for another department's batch as for none; everyone else 403, the anonymous
401), filters and keyset pages that neither repeat nor skip while runs are recorded, the report and every failing
row, release and discard audited as the caller, the command line's same answers, and no value of a level-3 field
in any response."""

from __future__ import annotations

import csv
import io
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.access import service as access
from catalog.db import make_engine, session_scope, utcnow
from catalog.ingest.failing_rows import read_failing_rows
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.runs import this_process
from catalog.ingest.service import ingest_export
from catalog.items.models import CatalogItem
from tests.api.conftest import PASSWORD, bearer, login, status_of
from tests.api.test_review import audit_events

POPULATION, ENTERPRISE, COMPLAINTS = "PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"
FAULTY = "faulty/psga_population_20261122.csv"  # two resident IDs with a wrong check character
LEVEL_3 = ["公民身份号码", "姓名", "出生日期", "联系电话", "户籍地址"]  # the population item's fields at level 3
BAD_DATE = "1992-13-45"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
Headers = dict[str, dict[str, str]]
# Reading a psga batch, and deciding on it, by caller (ops decide in tests of their own).
READ_PSGA = {"anonymous": 401, "zsj-user": 403, "wjj-user": 403, "psga-system": 403, "officer": 403, "zsj-steward": 404,
             "psga-steward": 200, "ops": 200}  # fmt: skip
DECIDE_PSGA = READ_PSGA | {"psga-steward": 403}
LISTING = {"anonymous": 401, "zsj-user": 403, "wjj-user": 403, "psga-system": 403, "officer": 403, "zsj-steward": 200,
           "psga-steward": 200, "ops": 200}  # fmt: skip


@pytest.fixture(scope="module")
def callers(client: TestClient, database: str, as_: Headers) -> Headers:
    engine = make_engine(database)
    with session_scope(engine) as session:
        access.create_user(session, "psga", "ops-person", "ops-person", PASSWORD, ["ops"])
        _, secret = access.create_machine_token(session, "psga", "runs", 30, "test")
    engine.dispose()
    return {**as_, "anonymous": {}, "psga-system": bearer(secret), "ops": bearer(login(client, "ops-person"))}


def population_export(samples_dir: Path, variant: int, bad_codes: int = 0, bad_dates: int = 0) -> bytes:
    """The faulty population export, with ``bad_codes`` rows of a sex outside the code list and ``bad_dates``
    impossible birth dates after them; ``variant`` changes one update time (other bytes, another batch)."""
    rows = list(csv.reader(io.StringIO((samples_dir / FAULTY).read_text(encoding="utf-8-sig"))))
    for row in rows[1 : bad_codes + 1]:
        row[2] = "未知"
    for row in rows[bad_codes + 1 : bad_codes + bad_dates + 1]:
        row[3] = BAD_DATE
    rows[-1][7] = f"2026-11-20 02:{variant:02d}:00"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


def quarantine(database: str, work: Path, code: str, data: bytes, name: str) -> int:
    engine = make_engine(database)
    with session_scope(engine) as session:
        outcome = ingest_export(session, code, data, name, raw_dir=work / "raw", reports_dir=work / "reports",
                                trigger="test")  # fmt: skip
    engine.dispose()
    assert outcome.outcome == "quarantined", outcome
    return outcome.batch_id


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def batches(published: list[str], database: str, samples_dir: Path, work: Path) -> dict[str, int]:
    """Quarantined batches no test decides: the faulty samples of psga and scjg, and a psga export with more
    failing rows than the report shows; and the population's published batch."""
    made = {
        "population": quarantine(database, work, POPULATION, population_export(samples_dir, 1), "p1.csv"),
        "enterprise": quarantine(database, work, ENTERPRISE, (samples_dir / "faulty/scjg_enterprise_20261121.csv")
                                 .read_bytes(), "scjg_enterprise_20261121.csv"),
        "many": quarantine(database, work, POPULATION, population_export(samples_dir, 2, 60, 3), "p2.csv"),
    }  # fmt: skip
    engine = make_engine(database)
    with session_scope(engine) as session:
        made["published"] = (
            session.scalars(
                select(IngestBatch.id).where(IngestBatch.outcome == "published").order_by(IngestBatch.id)
            ).first()
            or 0
        )
    engine.dispose()
    return made


@pytest.fixture(scope="module")
def level_3_values(samples_dir: Path) -> set[str]:
    rows = list(csv.DictReader(io.StringIO((samples_dir / FAULTY).read_text(encoding="utf-8-sig"))))
    return {row[field] for row in rows for field in LEVEL_3 if row[field]} | {BAD_DATE}


def add_runs(database: str, outcomes: list[str], first_start: datetime, host: str = "x", pid: int = 1) -> list[int]:
    """Runs of the complaints item recorded as the ingestion path leaves them, an hour apart."""
    engine = make_engine(database)
    made = []
    with session_scope(engine) as session:
        item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == COMPLAINTS))
        for n, outcome in enumerate(outcomes):
            raw = RawExport(item_id=item_id, sha256=secrets.token_hex(32), file_name="complaints.json", size_bytes=1,
                            stored_path="/nowhere")  # fmt: skip
            session.add(raw)
            session.flush()
            started = first_start + timedelta(hours=n)
            batch = IngestBatch(item_id=item_id, raw_export_id=raw.id, outcome=outcome, trigger="test", host=host,
                                pid=pid, started_at=started, finished_at=started, reasons=[], report={})  # fmt: skip
            session.add(batch)
            session.flush()
            made.append(batch.id)
    engine.dispose()
    return made


def current_version(database: str) -> int | None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        number = session.scalar(
            select(ItemVersion.number)
            .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
            .where(CatalogItem.code == POPULATION)
        )
    engine.dispose()
    return number


def problem(response: Any, expected: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = status_of(response, expected)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == code, body
    return body


def batch_ids(response: Any, key: str = "runs") -> list[int]:
    return [record["batch"] for record in status_of(response, 200)[key]]


# --- who may do what ---------------------------------------------------------------------------------------------


def test_the_permission_matrix(client: TestClient, callers: Headers, batches: dict[str, int], database: str) -> None:
    population, enterprise = batches["population"], batches["enterprise"]
    reason = {"reason": "核对后确认"}
    cells = []
    for caller, headers in callers.items():
        for path in ("/runs", "/quarantine"):
            cells.append((caller, path, client.get(path, headers=headers).status_code, LISTING[caller]))
        for path in (f"/runs/{population}", f"/runs/{population}/failing-rows"):
            cells.append((caller, path, client.get(path, headers=headers).status_code, READ_PSGA[caller]))
        for path in (f"/runs/{enterprise}", f"/runs/{enterprise}/failing-rows"):
            expected = {"psga-steward": 404, "ops": 200}.get(caller, READ_PSGA[caller])
            cells.append((caller, path, client.get(path, headers=headers).status_code, expected))
        if caller == "ops":
            continue
        for decision in ("release", "discard"):
            theirs = 404 if caller.endswith("steward") else DECIDE_PSGA[caller]
            for batch, expected in ((population, DECIDE_PSGA[caller]), (enterprise, theirs)):
                response = client.post(f"/quarantine/{batch}/{decision}", json=reason, headers=headers)
                cells.append((caller, f"{decision} {batch}", response.status_code, expected))
    assert [cell for cell in cells if cell[2] != cell[3]] == []
    waiting = batch_ids(client.get("/quarantine", headers=callers["ops"]), "batches")
    assert {population, enterprise} <= set(waiting)  # nobody but ops decided anything

    def denied(action: str, principal: str) -> list[dict[str, Any]]:
        return [event.detail for event in audit_events(database, action, principal=principal, outcome="denied")]

    assert {"batch_id": enterprise, "reason": "batch_not_found"} in denied("runs.read", "user:psga-steward")
    assert {"on_behalf_of": "zsj"} in denied("runs.read", "user:zsj-user")
    assert {"on_behalf_of": "psga"} in denied("runs.operate", "user:psga-steward")
    assert {"on_behalf_of": "psga"} in denied("runs.operate", "user:officer")
    assert denied("quarantine.release", "user:zsj-steward") == [
        {"batch_id": population, "reason": "batch_not_found"},
        {"batch_id": enterprise, "reason": "batch_not_found"},
    ]


def test_another_departments_batch_is_not_found_as_one_that_does_not_exist(
    client: TestClient, callers: Headers, batches: dict[str, int]
) -> None:
    steward = callers["psga-steward"]
    theirs = problem(client.get(f"/runs/{batches['enterprise']}", headers=steward), 404, "batch_not_found")
    none = problem(client.get("/runs/2000000000", headers=steward), 404, "batch_not_found")
    assert theirs["detail"].replace(str(batches["enterprise"]), "N") == none["detail"].replace("2000000000", "N")
    assert {key: value for key, value in theirs.items() if key not in ("detail", "instance")} == {
        key: value for key, value in none.items() if key not in ("detail", "instance")
    }


def test_a_steward_lists_their_own_departments_runs_and_ops_everyones(
    client: TestClient, callers: Headers, batches: dict[str, int]
) -> None:
    steward, ops = callers["psga-steward"], callers["ops"]
    own = status_of(client.get("/runs", params={"limit": 500}, headers=steward), 200)["runs"]
    assert {record["department"] for record in own} == {"psga"} and {record["item"] for record in own} == {POPULATION}
    assert {batches["population"], batches["many"], batches["published"]} <= {record["batch"] for record in own}
    problem(client.get("/runs", params={"department": "scjg"}, headers=steward), 403, "forbidden")
    assert batch_ids(client.get("/runs", params={"item": ENTERPRISE}, headers=steward)) == []
    assert batch_ids(client.get("/runs", params={"department": "psga"}, headers=steward)) == [r["batch"] for r in own]

    everyone = status_of(client.get("/runs", params={"limit": 500}, headers=ops), 200)["runs"]
    assert {"psga", "scjg"} <= {record["department"] for record in everyone}
    scjg = status_of(client.get("/runs", params={"department": "scjg"}, headers=ops), 200)["runs"]
    assert {record["item"] for record in scjg} == {ENTERPRISE}

    waiting = batch_ids(client.get("/quarantine", headers=steward), "batches")
    assert waiting == sorted(waiting) and batches["enterprise"] not in waiting
    assert {batches["population"], batches["many"]} <= set(waiting)
    everyones = batch_ids(client.get("/quarantine", params={"limit": 500}, headers=ops), "batches")
    assert batches["enterprise"] in everyones and everyones == sorted(everyones)


# --- listing: filters and pages ----------------------------------------------------------------------------------


def test_filters_and_pages_that_neither_repeat_nor_skip_while_runs_are_recorded(
    client: TestClient, callers: Headers, database: str
) -> None:
    made = add_runs(database, ["failed", "interrupted", "published"] * 6, T0)  # 18 runs, an hour apart
    ops = callers["ops"]

    def listed(**params: Any) -> list[int]:
        return batch_ids(client.get("/runs", params={"item": COMPLAINTS, "limit": 500, **params}, headers=ops))

    assert listed() == made[::-1]
    assert listed(outcome=["failed", "interrupted"]) == [b for n, b in enumerate(made) if n % 3 != 2][::-1]
    assert listed(since="2026-10-01T05:00:00", until="2026-10-01T09:00:00+00:00") == made[5:9][::-1]
    assert listed(since="2026-10-01T13:00:00+08:00", outcome="published") == made[5::3][::-1]
    assert listed(department="zsj", outcome="discarded") == []
    assert listed(since="0001-01-01T00:00:00+05:00", until="9999-12-31T23:59:59-05:00") == made[::-1]  # no overflow
    for wrong in ({"outcome": "lost"}, {"limit": 501}, {"before": 0}, {"since": "yesterday"}, {"item": "x;--"}):
        problem(client.get("/runs", params=wrong, headers=ops), 422, "invalid_request")

    seen: list[int] = []
    params: dict[str, Any] = {"item": COMPLAINTS, "outcome": ["failed", "published"], "limit": 5}
    for turn in range(10):
        page = status_of(client.get("/runs", params=params, headers=ops), 200)
        seen += [record["batch"] for record in page["runs"]]
        add_runs(database, ["failed", "published"], T0 + timedelta(days=1, hours=turn))  # newer than any page
        if page["next_before"] is None:
            break
        params["before"] = page["next_before"]
    expected = [b for n, b in enumerate(made) if n % 3 != 1][::-1]
    assert seen == expected and len(set(seen)) == 12 and turn == 2


def test_a_run_whose_process_is_gone_shows_as_interrupted(client: TestClient, callers: Headers, database: str) -> None:
    ops, (host, pid) = callers["ops"], this_process()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    [dead] = add_runs(database, ["running"], utcnow(), host, int(gone.stdout))
    [alive] = add_runs(database, ["running"], utcnow(), host, pid)
    [overdue] = add_runs(database, ["running"], utcnow() - timedelta(hours=7), "elsewhere", 1)

    assert status_of(client.get(f"/runs/{dead}", headers=ops), 200)["outcome"] == "interrupted"
    listed = status_of(client.get("/runs", params={"item": COMPLAINTS, "limit": 3}, headers=ops), 200)["runs"]
    assert {record["batch"]: record["outcome"] for record in listed} == {dead: "interrupted", alive: "running",
                                                                          overdue: "interrupted"}  # fmt: skip


def test_the_command_line_gives_the_same_answers(
    client: TestClient, callers: Headers, batches: dict[str, int], database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from catalog.cli import app
    from catalog.settings import get_settings

    monkeypatch.setenv("DATASHARE_DATABASE_URL", database)

    def both(cli: list[str], api: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["runs", "--json", *cli])
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        return json.loads(result.output), status_of(client.get("/runs", params=api, headers=callers["ops"]), 200)[
            "runs"
        ]

    for cli, api in (
        (["--limit", "500"], {"limit": 500}),
        (["--department", "psga", "--outcome", "quarantined", "--outcome", "published"],
         {"department": "psga", "outcome": ["quarantined", "published"], "limit": 20}),
        ([POPULATION, "--since", "2026-01-01", "--until", "2099-01-01 00:00:00"],
         {"item": POPULATION, "since": "2026-01-01T00:00:00", "until": "2099-01-01T00:00:00", "limit": 20}),
        (["--before", str(batches["many"]), "--limit", "2"], {"before": batches["many"], "limit": 2}),
    ):  # fmt: skip
        on_the_command_line, over_http = both(cli, api)
        assert on_the_command_line == over_http and over_http, cli


# --- the report and every failing row ----------------------------------------------------------------------------


def test_the_report_and_every_failing_row_however_many_the_report_shows(
    client: TestClient, callers: Headers, batches: dict[str, int], database: str
) -> None:
    steward = callers["psga-steward"]
    report = status_of(client.get(f"/runs/{batches['many']}", headers=steward), 200)
    assert (report["outcome"], report["department"], report["failing_rows_kept"]) == ("quarantined", "psga", True)
    assert report["quality_success"] is False and report["rows_failed_rules"] == 65
    code_list = next(check for check in report["report"]["checks"] if check["rule"] == "code list")
    assert (code_list["failed"], len(code_list["failing_rows"])) == (60, 20)  # the report shows the first 20

    response = client.get(f"/runs/{batches['many']}/failing-rows", headers=steward)
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="batch-{batches["many"]}-failing-rows.csv"'
    engine = make_engine(database)
    with session_scope(engine) as session:
        batch = session.get_one(IngestBatch, batches["many"])
        kept = b"".join(read_failing_rows(batch.failing_rows_path, batch.failing_rows_sha256))
    engine.dispose()
    assert response.content == kept
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["row", "field", "rule"] and all(len(row) == 3 for row in rows)
    assert sorted(int(row) for row, field, _ in rows[1:] if field == "性别") == list(range(1, 61))
    assert {(field, rule) for _, field, rule in rows[1:]} == {
        ("性别", "code list"),
        ("出生日期", "type date"),
        ("出生日期", "not null"),
        ("公民身份号码", "resident ID check digit"),
    }  # an impossible date is no date: its row fails the type and the not-null rule

    none = problem(client.get(f"/runs/{batches['published']}/failing-rows", headers=steward), 404,
                   "failing_rows_not_kept")  # fmt: skip
    assert "/" not in none["detail"]  # no server path


def test_no_value_of_a_level_3_field_in_any_response(
    client: TestClient, callers: Headers, batches: dict[str, int], level_3_values: set[str]
) -> None:
    bodies = []
    for caller in ("ops", "psga-steward"):
        headers = callers[caller]
        bodies += [client.get("/runs", params={"limit": 500}, headers=headers).text,
                   client.get("/quarantine", params={"limit": 500}, headers=headers).text]  # fmt: skip
        for batch in (batches["population"], batches["many"]):
            for path in (f"/runs/{batch}", f"/runs/{batch}/failing-rows"):
                response = client.get(path, headers=headers)
                assert response.status_code == 200
                bodies.append(response.text)
    report = json.loads(bodies[2])["report"]
    examples = [example for check in report["checks"] for example in check["examples"]]
    assert examples and all("*" in example for example in examples if example)  # masked, yet shown
    assert [value for value in level_3_values for body in bodies if value in body] == []


# --- decisions ---------------------------------------------------------------------------------------------------


def test_a_release_needs_a_reason_publishes_a_version_and_is_audited_as_the_caller(
    client: TestClient, callers: Headers, database: str, samples_dir: Path, work: Path
) -> None:
    ops = callers["ops"]
    batch = quarantine(database, work, POPULATION, population_export(samples_dir, 10), "p10.csv")
    path = f"/quarantine/{batch}/release"
    for body in ({}, {"reason": ""}, {"reason": " \t\n"}, {"reason": "x" * 1001}, {"force": True}):
        problem(client.post(path, json=body, headers=ops), 422, "invalid_request")
    before = current_version(database)

    released = status_of(client.post(path, json={"reason": "校验位错误为录入笔误，已与户籍科核对"}, headers=ops), 200)

    assert (released["batch"], released["outcome"], released["decided_by"]) == (batch, "released", "user:ops-person")
    assert released["version"] is not None and released["rows_accepted"] == released["rows_read"]
    assert current_version(database) == released["version"] != before
    [event] = audit_events(database, "quarantine.release", outcome="done", principal="user:ops-person")
    assert (event.item_code, event.version, event.detail["batch_id"], event.detail["reason"]) == (
        POPULATION, released["version"], batch, "校验位错误为录入笔误，已与户籍科核对")  # fmt: skip
    assert batch not in batch_ids(client.get("/quarantine", params={"limit": 500}, headers=ops), "batches")

    again = problem(client.post(path, json={"reason": "again"}, headers=ops), 409, "batch_not_quarantined")
    assert again["detail"] == f"batch {batch} is released, not quarantined"
    problem(client.post(f"/quarantine/{batch}/discard", json={"reason": "x"}, headers=ops), 409,
            "batch_not_quarantined")  # fmt: skip
    refusals = audit_events(database, "quarantine.release", outcome="denied", principal="user:ops-person")
    assert [event.detail for event in refusals] == [{"batch_id": batch, "reason": "batch_not_quarantined"}]


def test_a_release_that_would_replace_a_newer_version_needs_force(
    client: TestClient, callers: Headers, database: str, samples_dir: Path, work: Path
) -> None:
    ops = callers["ops"]
    older = quarantine(database, work, POPULATION, population_export(samples_dir, 20), "p20.csv")
    newer = quarantine(database, work, POPULATION, population_export(samples_dir, 21), "p21.csv")
    status_of(client.post(f"/quarantine/{newer}/release", json={"reason": "newer first"}, headers=ops), 200)

    refused = problem(client.post(f"/quarantine/{older}/release", json={"reason": "older"}, headers=ops), 409,
                      "invalid_transition")  # fmt: skip
    assert "was published after batch" in refused["detail"]
    forced = client.post(f"/quarantine/{older}/release", json={"reason": "older, on purpose", "force": True},
                         headers=ops)  # fmt: skip
    assert status_of(forced, 200)["outcome"] == "released"
    [event] = [e for e in audit_events(database, "quarantine.release", outcome="done") if e.detail["batch_id"] == older]
    assert event.detail["forced"] is True and event.principal == "user:ops-person"


def test_a_discard_keeps_the_current_version_and_is_audited_as_the_caller(
    client: TestClient, callers: Headers, database: str, samples_dir: Path, work: Path
) -> None:
    ops = callers["ops"]
    batch = quarantine(database, work, POPULATION, population_export(samples_dir, 30), "p30.csv")
    path = f"/quarantine/{batch}/discard"
    problem(client.post(path, json={"reason": "  "}, headers=ops), 422, "invalid_request")
    before = current_version(database)

    discarded = status_of(client.post(path, json={"reason": "错误的导出文件"}, headers=ops), 200)

    assert (discarded["outcome"], discarded["version"], discarded["decided_by"]) == ("discarded", None,
                                                                                     "user:ops-person")  # fmt: skip
    assert current_version(database) == before
    events = [e for e in audit_events(database, "quarantine.discard", outcome="done") if e.detail["batch_id"] == batch]
    assert [(e.principal, e.detail["reason"]) for e in events] == [("user:ops-person", "错误的导出文件")]
    problem(client.post(path, json={"reason": "again"}, headers=ops), 409, "batch_not_quarantined")
    problem(client.post(f"/quarantine/{batch}/release", json={"reason": "x"}, headers=ops), 409,
            "batch_not_quarantined")  # fmt: skip
    problem(client.post("/quarantine/2000000000/discard", json={"reason": "x"}, headers=ops), 404, "batch_not_found")


# --- the contract ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ops", "psga-steward"])
def test_generated_requests_get_no_5xx_and_documented_responses(client: TestClient, callers: Headers, who: str) -> None:
    """Schemathesis over these routes as the callers who may use them (last here: ops' requests may decide)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.core.result import Ok

    from api.limits import Limits, Rates
    from tests.api.test_openapi_schemathesis import CHECKS

    unlimited = Rates("1000000/minute", "1000000/minute", "1000000/minute", "1000000/minute")
    client.app.state.platform.limits = Limits(rates=unlimited)  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    ours = [operation for operation in operations if operation.path.startswith(("/runs", "/quarantine"))]
    assert len(ours) == 6
    for operation in ours:

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=callers[who], checks=CHECKS)

        check()
