"""Push delivery on both backends: a street office's steward names targets for its scoped subscription (a webhook, a
table in its own PostgreSQL database written by changed keys, a CSV file drop); a delivery run sends each the
current version once, as the subscription's reads show it (fields, masking, scope), audited; the next version reaches
the table as changed keys only; a failing target is recorded, told to ops and tried again without holding back the
others; a paused subscription gets nothing; the targets are the consumer's business alone."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.departments.models import Department
from catalog.ingest.service import ingest_export
from catalog.notifications import senders
from catalog.notifications.models import Notification
from catalog.push.models import DeliveryTarget
from catalog.push.service import deliver_item
from catalog.settings import Settings
from tests.api.conftest import POPULATION_REQUEST, bearer, login, revoke_every_subscription, status_of
from tests.conftest import create_postgres_database, drop_postgres_database

Headers = dict[str, dict[str, str]]
ITEM = "PSGA-RK-0001"
SCOPE = {"所属社区": {"in": ["汤坑社区", "碧岭社区"]}}
FIELDS = ["公民身份号码", "姓名", "所属社区"]


@pytest.fixture(scope="module")
def consumer_dsn() -> Iterator[str]:
    """The consumer department's own PostgreSQL database."""
    url = create_postgres_database("datashare_consumer")
    yield url.replace("postgresql+psycopg://", "postgresql://")
    drop_postgres_database(url)


class Receiver:
    """A webhook receiver on a free local port: what it was sent, and what it answers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/datashare"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


@pytest.fixture
def residents(samples_dir: Path, published: list[str]) -> list[dict[str, str]]:
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        return list(csv.DictReader(export))


def settings_of(client: TestClient) -> Settings:
    settings: Settings = client.app.state.platform.settings  # type: ignore[attr-defined]
    return settings.model_copy(update={"notification_allowed_hosts": ["127.0.0.1"]})


def scoped_subscription(client: TestClient, as_: Headers, database: str) -> int:
    revoke_every_subscription(database)
    request = {**POPULATION_REQUEST, "fields": FIELDS, "scope": SCOPE}
    created = status_of(client.post("/subscriptions", json=request, headers=as_["zsj-user"]), 201)
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 3}, headers=as_["officer"])
    assert status_of(approved, 200)["status"] == "active"
    return int(created["id"])


def add_target(client: TestClient, as_: Headers, subscription: int, **body: Any) -> dict[str, Any]:
    return dict(status_of(client.post(f"/subscriptions/{subscription}/targets", json=body,
                                      headers=as_["zsj-steward"]), 201))  # fmt: skip


def deliver(database: str, client: TestClient) -> Any:
    engine = make_engine(database)
    try:
        return deliver_item(engine, settings_of(client), ITEM, "test")
    finally:
        engine.dispose()


def in_scope(residents: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["公民身份号码"]: r for r in residents if r["所属社区"] in SCOPE["所属社区"]["in"]}


def consumer_rows(dsn: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(dsn) as db:
        return {row[0]: (row[1], row[2]) for row in db.execute('SELECT "公民身份号码", "姓名", "所属社区" FROM '
                                                                "shared.population")}  # fmt: skip


def test_each_target_gets_the_version_as_the_subscription_reads_it_then_changed_keys_only(
    client: TestClient, as_: Headers, database: str, data_dir: Path, residents: list[dict[str, str]],
    consumer_dsn: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    subscription = scoped_subscription(client, as_, database)
    hook = add_target(client, as_, subscription, name="street-hook", kind="webhook", url=receiver.url)
    table = add_target(client, as_, subscription, name="street-db", kind="database", db_schema="shared",
                       db_table="population", mode="changed")  # fmt: skip
    folder = data_dir.resolve() / "outbound" / "zsj"
    add_target(client, as_, subscription, name="street-files", kind="file", url=f"file://{folder}", file_format="csv")
    assert (hook["secret_variable"], table["secret_variable"]) == ("ZSJ_STREET_HOOK_DELIVERY_SECRET",
                                                                   "ZSJ_STREET_DB_DELIVERY_DSN")  # fmt: skip
    monkeypatch.setenv("ZSJ_STREET_HOOK_DELIVERY_SECRET", "hook-secret")
    monkeypatch.setenv("ZSJ_STREET_DB_DELIVERY_DSN", consumer_dsn)
    receiver.received.clear()

    expected = in_scope(residents)
    report = deliver(database, client)
    assert (len(report.delivered), report.failed) == (3, [])
    headers, body = receiver.received[-1]
    assert senders.verify_signature("hook-secret", headers["X-Datashare-Timestamp"], body,
                                    headers["X-Datashare-Signature"])  # fmt: skip
    notice = json.loads(body)
    assert (notice["item"], notice["version"], notice["rows"], notice["fields"]) == (ITEM, 1, len(expected), FIELDS)
    link = urlsplit(notice["download"]["csv"])
    downloaded = client.get(f"{link.path}?{link.query}")
    assert downloaded.status_code == 200
    rows = list(csv.DictReader(io.StringIO(downloaded.content.decode("utf-8-sig"))))
    assert {row["公民身份号码"] for row in rows} == set(expected)  # the scope holds through the link
    tampered = client.get(f"{link.path}?token={link.query.split('=', 1)[1][:-2]}00")
    assert (tampered.status_code, tampered.json()["code"]) == (403, "invalid_delivery_link")
    assert consumer_rows(consumer_dsn) == {key: (r["姓名"], r["所属社区"]) for key, r in expected.items()}
    dropped = list(csv.DictReader((folder / f"{ITEM}-v1.csv").open(encoding="utf-8-sig")))
    assert {row["公民身份号码"] for row in dropped} == set(expected)
    assert deliver(database, client).delivered == []  # once per target and version

    # Version 2: one resident renamed, one moved out of the scope: the table gets those keys only.
    renamed, moved = list(expected)[:2]
    changed = [dict(r, 姓名="改名者") if r["公民身份号码"] == renamed else
               dict(r, 所属社区="马峦社区") if r["公民身份号码"] == moved else r for r in residents]  # fmt: skip
    publish(database, changed, tmp_path)
    report = deliver(database, client)
    assert (len(report.delivered), report.failed) == (3, [])
    after = consumer_rows(consumer_dsn)
    assert after[renamed][0] == "改名者" and moved not in after and len(after) == len(expected) - 1
    records = status_of(client.get("/deliveries", params={"item": ITEM, "subscription": subscription},
                                   headers=as_["zsj-user"]), 200)  # fmt: skip
    newest_db = next(r for r in records if r["target"] == "street-db" and r["version"] == 2)
    assert (newest_db["status"], newest_db["mode"], newest_db["rows"]) == ("delivered", "changed", 1)
    with psycopg.connect(consumer_dsn) as db:
        assert db.execute("SELECT version, mode FROM shared._datashare_deliveries ORDER BY version").fetchall() == [
            (1, "full"), (2, "changed")]  # fmt: skip
    engine = make_engine(database)
    with session_scope(engine) as session:
        delivered = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.deliver")).all()
    engine.dispose()
    assert sorted((e.detail["target"], e.version) for e in delivered) == sorted(
        (name, version) for name in ("street-hook", "street-db", "street-files") for version in (1, 2)
    )
    assert all(e.department == "zsj" and e.subscription_id == subscription for e in delivered)
    assert client.delete(f"/delivery-targets/{hook['id']}", headers=as_["zsj-steward"]).status_code == 204
    assert client.get(f"{link.path}?{link.query}").status_code == 403  # a removed target's links end with it
    again = add_target(client, as_, subscription, name="street-hook", kind="webhook", url=receiver.url + "/new")
    assert again["id"] == hook["id"] and client.get(f"{link.path}?{link.query}").status_code == 403  # not revived
    other_kind = {"name": "street-hook", "kind": "file", "url": f"file://{folder}/x", "file_format": "csv"}
    client.delete(f"/delivery-targets/{hook['id']}", headers=as_["zsj-steward"])
    refused = client.post(f"/subscriptions/{subscription}/targets", json=other_kind, headers=as_["zsj-steward"])
    assert refused.status_code == 409  # a name keeps its kind: its secret variable stays claimed


def publish(database: str, residents: list[dict[str, str]], folder: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(residents[0]))
    writer.writeheader()
    writer.writerows(residents)
    engine = make_engine(database)
    with session_scope(engine) as session:
        report = ingest_export(session, ITEM, buffer.getvalue().encode("utf-8"), "psga_population_20261122.csv",
                               raw_dir=folder, trigger="test")  # fmt: skip
        assert report.outcome == "published"
    engine.dispose()


def test_a_failing_target_is_recorded_told_and_tried_again_and_a_pause_holds(
    client: TestClient, as_: Headers, database: str, data_dir: Path, receiver: Receiver, published: list[str],
    monkeypatch: pytest.MonkeyPatch, ops: str,
) -> None:  # fmt: skip
    subscription = scoped_subscription(client, as_, database)
    add_target(client, as_, subscription, name="broken-hook", kind="webhook", url=receiver.url)
    folder = data_dir.resolve() / "outbound" / "zsj" / "second"
    add_target(client, as_, subscription, name="files-2", kind="file", url=f"file://{folder}", file_format="parquet")
    monkeypatch.setenv("ZSJ_BROKEN_HOOK_DELIVERY_SECRET", "s")
    receiver.status = 500
    try:
        report = deliver(database, client)
        again = deliver(database, client)
    finally:
        receiver.status = 200
    assert len(report.delivered) == 1 and "HTTP 500" in report.failed[0]  # the file went; the hook did not
    assert again.delivered == [] and len(again.failed) == 1
    failed = status_of(client.get("/deliveries", params={"status": "failed"}, headers=bearer(login(client, ops))), 200)
    mine = [r for r in failed if r["subscription_id"] == subscription]
    assert [(r["target"], r["attempts"], r["error"]) for r in mine] == [
        ("broken-hook", 2, "the webhook answered HTTP 500")
    ]
    engine = make_engine(database)
    with session_scope(engine) as session:
        told = session.scalars(
            select(Notification.audience).where(
                Notification.kind == "delivery_failed", Notification.subscription_id == subscription
            )
        )
        assert sorted(told) == ["ops", "stewards"]  # once, however often it is tried
    engine.dispose()

    paused = client.put(f"/subscriptions/{subscription}/deliveries/paused", json={"paused": True},
                        headers=as_["zsj-steward"])  # fmt: skip
    assert status_of(paused, 200) == {"paused": True}
    assert deliver(database, client).failed == []  # nothing due while paused
    client.put(f"/subscriptions/{subscription}/deliveries/paused", json={"paused": False}, headers=as_["zsj-steward"])
    assert len(deliver(database, client).delivered) == 1  # resumed: the hook gets the current version


def test_targets_are_the_consumers_business(
    client: TestClient, as_: Headers, database: str, published: list[str], data_dir: Path
) -> None:
    subscription = scoped_subscription(client, as_, database)
    outbound = data_dir.resolve() / "outbound"
    hook = {"name": "hook-a", "kind": "webhook", "url": "https://zsj.example.gov.cn/hook"}
    path = f"/subscriptions/{subscription}/targets"
    assert client.post(path, json=hook, headers=as_["zsj-user"]).status_code == 403  # a user, not a steward
    assert client.post(path, json=hook, headers=as_["psga-steward"]).status_code == 404  # the provider
    assert client.post(path, json=hook, headers=as_["wjj-user"]).status_code == 404
    assert client.post(path, json=hook).status_code == 401
    made = status_of(client.post(path, json=hook, headers=as_["zsj-steward"]), 201)
    assert client.get(path, headers=as_["psga-steward"]).status_code == 404
    assert [t["name"] for t in status_of(client.get(path, headers=as_["zsj-user"]), 200)] == ["hook-a"]
    for stranger in ("officer", "wjj-user", "psga-steward"):  # the same answer as for a target that does not exist
        refused = client.delete(f"/delivery-targets/{made['id']}", headers=as_[stranger]).json()
        missing = client.delete("/delivery-targets/99999", headers=as_[stranger]).json()
        assert (refused["code"], refused["detail"].replace(str(made["id"]), "N")) == (
            missing["code"], missing["detail"].replace("99999", "N"))  # fmt: skip
    engine = make_engine(database)
    with session_scope(engine) as session:  # each refusal audited, as for any endpoint
        refusals = session.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "delivery_target.delete",
                                                                    AuditEvent.outcome == "denied")).all()  # fmt: skip
    engine.dispose()
    assert len(refusals) >= 6
    bad = [
        {"name": "f", "kind": "file", "url": "file:///etc/datashare", "file_format": "csv"},  # outside outbound
        {"name": "f", "kind": "file", "url": f"file://{outbound}", "file_format": "csv"},  # the root itself
        {"name": "f", "kind": "file", "url": f"file://{outbound}/wjj", "file_format": "csv"},  # another's folder
        {"name": "f", "kind": "file", "url": f"file://{outbound}/zsj/../wjj", "file_format": "csv"},
        {"name": "f", "kind": "file", "url": "s3://bucket/zsj", "file_format": "csv"},  # a root not allowed
        {"name": "w", "kind": "webhook", "url": "https://user:pw@zsj.example.gov.cn/hook"},
        {"name": "d", "kind": "database", "db_schema": "shared", "db_table": "Population; DROP"},
        {"name": "d", "kind": "database", "db_schema": "shared"},
    ]
    for body in bad:
        assert client.post(path, json=body, headers=as_["zsj-steward"]).status_code == 422, body
    assert all(r["department"] == "wjj" for r in client.get("/deliveries", headers=as_["wjj-user"]).json())
    assert client.delete(f"/delivery-targets/{made['id']}", headers=as_["zsj-steward"]).status_code == 204


def test_a_removed_targets_name_and_variable_stay_its_departments(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    """Department codes and target names meet at a hyphen (zsj + x-db, zsj-x + db): a secret variable, once a
    department's, is never another's, even after its target is removed; the department takes its name up again."""
    subscription = scoped_subscription(client, as_, database)
    path = f"/subscriptions/{subscription}/targets"
    made = status_of(client.post(path, json={"name": "x-db", "kind": "database", "db_schema": "s", "db_table": "t"},
                                 headers=as_["zsj-steward"]), 201)  # fmt: skip
    assert made["secret_variable"] == "ZSJ_X_DB_DELIVERY_DSN"
    assert client.delete(f"/delivery-targets/{made['id']}", headers=as_["zsj-steward"]).status_code == 204
    engine = make_engine(database)
    with session_scope(engine) as session:  # another department whose code and a name make the same variable
        department_id = session.scalar(select(Department.id).where(Department.code == "wjj"))
        session.add(DeliveryTarget(subscription_id=subscription, department_id=department_id, name="x-db-copy",
                                   kind="database", mode="full", secret_variable="ZSJ_X_DB_DELIVERY_DSN",
                                   created_by="test"))  # fmt: skip
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
    engine.dispose()
    again = status_of(client.post(path, json={"name": "x-db", "kind": "database", "db_schema": "s2", "db_table": "t"},
                                  headers=as_["zsj-steward"]), 201)  # fmt: skip
    assert (again["id"], again["db_schema"]) == (made["id"], "s2")  # its own name, taken up again


def test_two_runs_at_once_send_a_version_once(
    client: TestClient, as_: Headers, database: str, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG and `datashare deliveries run` at the same moment: the record is claimed by one; the other skips it."""
    slow = Receiver()
    answer = slow.server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

    def slowly(handler: Any) -> None:
        time.sleep(1.0)
        answer(handler)

    slow.server.RequestHandlerClass.do_POST = slowly  # type: ignore[attr-defined]
    subscription = scoped_subscription(client, as_, database)
    add_target(client, as_, subscription, name="race-hook", kind="webhook", url=slow.url)
    monkeypatch.setenv("ZSJ_RACE_HOOK_DELIVERY_SECRET", "s")
    reports: list[Any] = []
    runs = [threading.Thread(target=lambda: reports.append(deliver(database, client))) for _ in range(2)]
    try:
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    finally:
        slow.server.shutdown()
    assert len(slow.received) == 1
    assert sorted(len(report.delivered) for report in reports) == [0, 1]
    engine = make_engine(database)
    with session_scope(engine) as session:
        delivered = select(AuditEvent.id).where(AuditEvent.action == "data.deliver")
        audited = session.scalars(delivered.where(AuditEvent.subscription_id == subscription)).all()
    engine.dispose()
    assert len(audited) == 1
