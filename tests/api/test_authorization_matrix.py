"""The authorization matrix: every data endpoint and every subscription decision, for every kind of caller,
with the consumer's subscription absent, requested, active, expired and revoked. Each cell asserts the exact
status, and no response body in any format carries an unmasked resident ID."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from catalog.access import service as access
from catalog.db import make_engine, session_scope, utcnow
from catalog.subscriptions.models import Subscription
from tests.api.conftest import announce_every_item, bearer

ITEM = "PSGA-RK-0001"
DATA = ["/data", "/data.csv", "/data.jsonl", "/data.parquet"]
FIELDS = ["公民身份号码", "所属社区"]
REQUEST = {"item": ITEM, "fields": FIELDS, "purpose": "核对户籍信息", "legal_basis": "数据条例",
           "period_days": 30}  # fmt: skip
CALLERS = ["anonymous", "zsj-user", "zsj-steward", "zsj-system", "wjj-user", "psga-steward", "officer"]
CONSUMERS = {"zsj-user", "zsj-steward", "zsj-system"}
# Reading data: anonymous callers do not learn a non-open item exists; the consumer's people and systems
# read with an active subscription only; other departments, the provider and officers hold none.
READ = {caller: (lambda state, c=caller: 404 if c == "anonymous" else 200 if c in CONSUMERS and state == "active"
                 else 403) for caller in CALLERS}  # fmt: skip
# The provider's approval of a request: only the provider's steward; the consumer side may not; another
# department does not even see it; an officer comes second.
APPROVE = {"anonymous": 401, "zsj-user": 403, "zsj-steward": 403, "zsj-system": 404, "wjj-user": 404,
           "psga-steward": 200, "officer": 403}  # fmt: skip


@pytest.fixture(scope="module")
def headers(as_: dict[str, dict[str, str]], database: str) -> dict[str, dict[str, str]]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        _, secret = access.create_machine_token(session, "zsj", "matrix", 30, "test")
    engine.dispose()
    return {**as_, "anonymous": {}, "zsj-system": bearer(secret)}


def set_subscription(
    client: TestClient,
    database: str,
    as_: dict[str, dict[str, str]],
    state: str,
    level: int = 2,
    scope: dict[str, Any] | None = None,
) -> int | None:
    """zsj's subscription to the population item in the given state (None: there is none), approved up to
    ``level``: at 2 the resident IDs (level 3) are delivered masked even to the subscriber; limited to ``scope``."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(delete(Subscription))
        announce_every_item(session)
    subscription_id = None
    if state != "none":
        asked = [*FIELDS, *(name for name in scope or {} if name not in FIELDS)]
        request = REQUEST | {"scope": scope, "fields": asked}
        subscription_id = client.post("/subscriptions", json=request, headers=as_["zsj-user"]).json()["id"]
        values: dict[str, Any] = {"requested": {}, "active": {"status": "active", "approved_level": level,
                                  "active_from": utcnow(), "expires_at": utcnow() + timedelta(days=1)},
                                  "expired": {"status": "active", "approved_level": level, "active_from": utcnow(),
                                              "expires_at": utcnow() - timedelta(seconds=1)},
                                  "revoked": {"status": "revoked", "approved_level": level}}[state]  # fmt: skip
        if values:
            with session_scope(engine) as session:
                session.execute(update(Subscription).where(Subscription.id == subscription_id).values(**values))
                announce_every_item(session)
    engine.dispose()
    return subscription_id


@pytest.mark.parametrize("state", ["none", "requested", "active", "expired", "revoked"])
def test_reading_data(
    client: TestClient,
    database: str,
    as_: dict[str, dict[str, str]],
    headers: dict[str, dict[str, str]],
    published: list[str],
    state: str,
) -> None:
    set_subscription(client, database, as_, state)
    cells = []
    for caller in CALLERS:
        for path in DATA:
            response = client.get(f"/items/{ITEM}{path}", headers=headers[caller])
            cells.append((caller, path, response.status_code, READ[caller](state)))
            body = response.content.decode("utf-8", errors="replace")
            assert not [value for value in published if value in body], (caller, path, state)
    assert [cell for cell in cells if cell[2] != cell[3]] == []


def test_the_first_approval(
    client: TestClient, database: str, as_: dict[str, dict[str, str]], headers: dict[str, dict[str, str]]
) -> None:
    for caller, expected in APPROVE.items():
        subscription_id = set_subscription(client, database, as_, "requested")
        response = client.post(f"/subscriptions/{subscription_id}/approve", headers=headers[caller])
        assert response.status_code == expected, (caller, response.text)


def test_no_one_reads_a_field_the_subscription_does_not_include(
    client: TestClient, database: str, as_: dict[str, dict[str, str]], published: list[str]
) -> None:
    set_subscription(client, database, as_, "active", level=3)
    page = client.get(f"/items/{ITEM}/data", params={"limit": 1000}, headers=as_["zsj-user"]).json()
    assert {name for row in page["rows"] for name in row} == {"_row", "公民身份号码", "所属社区"}
    assert page["masked_fields"] == []  # approved at level 3: the resident IDs are readable to this subscriber
    assert {row["公民身份号码"] for row in page["rows"]} == set(published)


SCOPES: dict[str, dict[str, Any]] = {
    "community": {"所属社区": {"in": ["碧岭社区"]}},
    "births": {"出生日期": {"from": "1985-01-01", "to": "1990-12-31"}},
}


@pytest.mark.parametrize("scope", SCOPES)
def test_no_row_outside_the_scope_in_any_output(
    client: TestClient,
    database: str,
    as_: dict[str, dict[str, str]],
    headers: dict[str, dict[str, str]],
    samples_dir: Path,
    published: list[str],
    scope: str,
) -> None:
    """The scope dimension: with zsj's subscription limited to some rows (and the resident IDs readable), no caller
    gets a row outside it from any endpoint in any format; zsj's callers get exactly the rows inside it."""
    set_subscription(client, database, as_, "active", level=3, scope=SCOPES[scope])
    residents = list(csv.DictReader((samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig")))
    ((name, condition),) = SCOPES[scope].items()
    inside = [r["公民身份号码"] for r in residents if condition.get("from", r[name]) <= r[name] <=
              condition.get("to", r[name]) and r[name] in condition.get("in", [r[name]])]  # fmt: skip
    outside = set(published) - set(inside)
    assert inside and outside
    for caller in CALLERS:
        for path in DATA:
            response = client.get(f"/items/{ITEM}{path}", headers=headers[caller])
            assert response.status_code == READ[caller]("active"), (caller, path)
            body = response.content.decode("utf-8", errors="replace")
            assert not [value for value in outside if value in body], (caller, path)
            if response.status_code == 200:
                assert _ids(path, response.content) == inside, (caller, path)
    verified = client.post(f"/items/{ITEM}/verify", headers=as_["zsj-user"],
                           json={"records": [{"公民身份号码": value} for value in sorted(outside)[:1000]]})  # fmt: skip
    assert [result["match"] for result in verified.json()["results"]] == [False] * min(len(outside), 1000)


def _ids(path: str, body: bytes) -> list[str]:
    if path == "/data":
        return [row["公民身份号码"] for row in json.loads(body)["rows"]]
    if path == "/data.csv":
        return [row["公民身份号码"] for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))]
    if path == "/data.jsonl":
        return [json.loads(line)["公民身份号码"] for line in body.decode().splitlines()]
    return [str(value) for value in pq.read_table(io.BytesIO(body)).column("公民身份号码").to_pylist()]
