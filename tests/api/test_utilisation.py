"""The utilisation figures over HTTP: who may read which figures (the Casbin guard, refusals audited), the consumers
shown only to those who may know of their subscriptions, the figures themselves, and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope, utcnow
from tests.api.conftest import bearer, login, status_of
from tests.catalog.utilisation.fixture import use

POPULATION = "PSGA-RK-0001"
PATHS = ["/utilisation", "/utilisation/departments/zsj", "/utilisation/history"]


@pytest.fixture(scope="module")
def uses(database: str) -> None:
    """zsj read the population item twice (rows 10 and 20), wjj verified against it once; a denied read, a read 40
    days ago and a delivery that failed count nowhere."""
    engine = make_engine(database)
    now = utcnow()
    with session_scope(engine) as session:
        use(session, now, "zsj", "data.read", "allowed", POPULATION, 10)
        use(session, now - timedelta(days=2), "zsj", "data.read", "allowed", POPULATION, 20)
        use(session, now, "wjj", "data.verify", "allowed", POPULATION)
        use(session, now, "wjj", "data.read", "denied", POPULATION)
        use(session, now - timedelta(days=40), "zsj", "data.read", "allowed", POPULATION, 5)
        use(session, now, "zsj", "data.deliver", "failed", POPULATION, 99)
    engine.dispose()


def denied_events(database: str, principal: str) -> list[tuple[str, str]]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        rows = session.execute(select(AuditEvent.action, AuditEvent.outcome).where(
            AuditEvent.principal == principal, AuditEvent.action.like("utilisation%"))).all()  # fmt: skip
    engine.dispose()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_the_anonymous_must_sign_in(client: TestClient) -> None:
    for path in PATHS:
        assert client.get(path).status_code == 401, path


def test_a_department_user_reads_only_their_own_department(
    client: TestClient, as_: dict[str, dict[str, str]], database: str, uses: None
) -> None:
    zsj = as_["zsj-user"]
    assert client.get("/utilisation", headers=zsj).status_code == 403
    assert client.get("/utilisation/departments/psga", headers=zsj).status_code == 403
    assert client.get("/utilisation/history?department=psga", headers=zsj).status_code == 403
    assert ("utilisation.read", "denied") in denied_events(database, "user:zsj-user")
    own = status_of(client.get("/utilisation/departments/zsj", headers=zsj), 200)
    assert own["figures"]["as_consumer"]["uses"] == {"reads": 2, "rows_read": 30, "verifications": 0,
                                                     "deliveries": 0, "rows_delivered": 0}  # fmt: skip
    assert [(item["item"], [c["department"] for c in item["consumers"]]) for item in own["top_used"]] == [
        (POPULATION, ["zsj"])]  # fmt: skip
    history = status_of(client.get("/utilisation/history", headers=zsj), 200)
    assert [entry["department"] for entry in history["departments"]] == ["zsj"]
    assert history["departments"][0]["periods"][-1]["published_items"] == 1


def test_officers_read_the_platform_and_every_department(
    client: TestClient, as_: dict[str, dict[str, str]], uses: None
) -> None:
    found = status_of(client.get("/utilisation", headers=as_["officer"]), 200)
    whole = found["platform"]
    assert (whole["published_items"], whole["used_items"], whole["share_used"]) == (3, 1, 0.3333)
    assert whole["uses"] == {"reads": 2, "rows_read": 30, "verifications": 1, "deliveries": 0, "rows_delivered": 0}
    assert whole["per_item"]["reads"] == 0.6667 and whole["per_item"]["rows"] == 10.0
    assert {entry["department"] for entry in found["departments"]} >= {"psga", "zsj", "wjj", "scjg"}
    top = found["top_items"]
    assert [item["item"] for item in top] == [POPULATION]
    assert [(c["department"], c["uses"]["reads"]) for c in top[0]["consumers"]] == [("zsj", 2), ("wjj", 0)]
    assert status_of(client.get("/utilisation/departments/wjj", headers=as_["officer"]), 200)["figures"][
        "as_consumer"]["uses"]["verifications"] == 1  # fmt: skip
    assert client.get("/utilisation/departments/nowhere", headers=as_["officer"]).status_code == 404
    assert client.get("/utilisation?days=0", headers=as_["officer"]).status_code == 422


def test_consumers_are_shown_only_to_those_who_may_know_of_them(
    client: TestClient, as_: dict[str, dict[str, str]], ops: str, uses: None
) -> None:
    provider = status_of(client.get("/utilisation/departments/psga", headers=as_["psga-steward"]), 200)
    assert [c["department"] for c in provider["top_items"][0]["consumers"]] == ["zsj", "wjj"]
    assert provider["figures"]["as_provider"]["uses"]["reads"] == 2
    as_ops = bearer(login(client, ops))
    seen = status_of(client.get("/utilisation", headers=as_ops), 200)  # ops read figures, not subscriptions
    assert seen["top_items"][0]["uses"]["reads"] == 2 and seen["top_items"][0]["consumers"] == []


def test_csv_by_query_or_by_accept(client: TestClient, as_: dict[str, dict[str, str]], uses: None) -> None:
    for response in (client.get("/utilisation?format=csv", headers=as_["officer"]),
                     client.get("/utilisation", headers={**as_["officer"], "Accept": "text/csv"})):  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert (rows[0]["department"], rows[0]["reads"], rows[0]["used_items"]) == ("*", "2", "1")
        zsj = next(row for row in rows if row["department"] == "zsj")
        assert (zsj["consumer_reads"], zsj["consumer_rows_read"]) == ("2", "30")
    items = client.get("/utilisation/departments/psga?format=csv", headers=as_["psga-steward"])
    rows = list(csv.DictReader(io.StringIO(items.text)))
    assert [(row["item"], row["reads"], row["consumers"]) for row in rows] == [(POPULATION, "2", "zsj:2; wjj:1")]
    history = client.get("/utilisation/history?format=csv&months=2", headers=as_["zsj-user"])
    assert [row["department"] for row in csv.DictReader(io.StringIO(history.text))] == ["zsj", "zsj"]
