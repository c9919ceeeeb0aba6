"""Row-level scopes on both backends: a subscription limited to some rows (a community, a range of birth dates) is
asked for by the consumer, set or narrowed by the provider's steward (and further by an officer), never widened, and
holds in every page, count, filter, download format and verification look-up."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from catalog.audit.models import AuditEvent
from catalog.classification.types import DataType
from catalog.db import make_engine, session_scope, utcnow
from catalog.subscriptions import scopes
from catalog.subscriptions.models import Subscription
from tests.api.conftest import POPULATION_REQUEST, announce_every_item, revoke_every_subscription, status_of

Headers = dict[str, dict[str, str]]
ITEM = "/items/PSGA-RK-0001"
FIELDS = ["公民身份号码", "姓名", "所属社区", "出生日期"]  # a scope's fields are among the subscription's
COMMUNITY = {"所属社区": {"in": ["汤坑社区", "碧岭社区"]}}  # as stored: distinct, sorted
BIRTHS = {"出生日期": {"from": "1980-01-01", "to": "1999-12-31"}}


@pytest.fixture(scope="module")
def residents(samples_dir: Path, published: list[str]) -> list[dict[str, str]]:
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        return list(csv.DictReader(export))


def subscribe(client: TestClient, as_: Headers, database: str, asked: Any, granted: Any = None,
              officer_narrows: Any = None, kind: str = "read") -> dict[str, Any]:  # fmt: skip
    """zsj's subscription asking for ``asked``, approved by the provider with ``granted`` (None: as asked) and by the
    officer at level 3 (the resident IDs readable) with ``officer_narrows``."""
    revoke_every_subscription(database)
    request = {**POPULATION_REQUEST, "fields": FIELDS, "scope": asked, "kind": kind}
    created = status_of(client.post("/subscriptions", json=request, headers=as_["zsj-user"]), 201)
    provider = {} if granted is None else {"scope": granted}
    status_of(client.post(f"/subscriptions/{created['id']}/approve", json=provider, headers=as_["psga-steward"]), 200)
    officer = {"level": 3} | ({} if officer_narrows is None else {"scope": officer_narrows})
    approved = client.post(f"/subscriptions/{created['id']}/approve", json=officer, headers=as_["officer"])
    return dict(status_of(approved, 200))


def within(residents: list[dict[str, str]], scope: dict[str, Any]) -> list[dict[str, str]]:
    def meets(resident: dict[str, str], name: str, condition: dict[str, Any]) -> bool:
        value = resident[name]
        if "in" in condition:
            return value in condition["in"]
        return condition.get("from", value) <= value <= condition.get("to", value)  # ISO dates compare as text

    return [r for r in residents if all(meets(r, name, condition) for name, condition in scope.items())]


def all_pages(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    rows, after = [], 0
    while after is not None:
        page = status_of(client.get(f"{ITEM}/data", params={"limit": 37, "after": after, **params},
                                    headers=headers), 200)  # fmt: skip
        rows += page["rows"]
        after = page["next_after"]
    return rows


DOWNLOADS: dict[str, Callable[[bytes], list[str]]] = {
    "csv": lambda body: [row["公民身份号码"] for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))],
    "jsonl": lambda body: [json.loads(line)["公民身份号码"] for line in body.decode().splitlines()],
    "parquet": lambda body: pq.read_table(io.BytesIO(body)).column("公民身份号码").to_pylist(),
}


@pytest.mark.parametrize("scope", [COMMUNITY, BIRTHS, COMMUNITY | BIRTHS], ids=["community", "births", "both"])
def test_the_scope_holds_in_every_page_download_and_filter(
    client: TestClient, as_: Headers, database: str, residents: list[dict[str, str]], scope: dict[str, Any]
) -> None:
    created = subscribe(client, as_, database, scope)
    assert created["scope"] == created["requested_scope"] == scope
    expected = [r["公民身份号码"] for r in within(residents, scope)]
    assert 0 < len(expected) < len(residents)
    reader = as_["zsj-user"]
    assert [row["公民身份号码"] for row in all_pages(client, reader)] == expected  # in row order, pages joined
    for kind, ids_of in DOWNLOADS.items():
        response = client.get(f"{ITEM}/data.{kind}", headers=reader)
        assert (response.status_code, ids_of(response.content)) == (200, expected), kind
    outside = next(r for r in residents if r not in within(residents, scope))
    filtered = all_pages(client, reader, filter=f"公民身份号码:{outside['公民身份号码']}")
    assert filtered == []  # a filter finds nothing outside the scope
    inside = within(residents, scope)[0]
    assert [r["姓名"] for r in all_pages(client, reader, filter=f"公民身份号码:{inside['公民身份号码']}")] == [
        inside["姓名"]
    ]
    engine = make_engine(database)
    with session_scope(engine) as session:  # the downloads' audit counts the rows in the scope
        counted = session.scalars(
            select(AuditEvent.rows)
            .where(AuditEvent.action == "data.read", AuditEvent.detail["format"].as_string() == "csv")
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one()
    engine.dispose()
    assert counted == len(expected)


def test_a_verification_look_up_matches_no_one_outside_the_scope(
    client: TestClient, as_: Headers, database: str, residents: list[dict[str, str]]
) -> None:
    subscribe(client, as_, database, COMMUNITY, kind="verify")
    inside = within(residents, COMMUNITY)[0]
    outside = next(r for r in residents if r["所属社区"] not in COMMUNITY["所属社区"]["in"])
    records = [{"公民身份号码": inside["公民身份号码"]}, {"公民身份号码": outside["公民身份号码"]}]
    body = status_of(client.post(f"{ITEM}/verify", json={"records": records}, headers=as_["zsj-user"]), 200)
    assert [result["match"] for result in body["results"]] == [True, False]
    assert body["results"][0]["fields"]["所属社区"] == inside["所属社区"]


def test_the_provider_narrows_or_sets_a_scope_and_the_officer_narrows_it_further(
    client: TestClient, as_: Headers, database: str, residents: list[dict[str, str]]
) -> None:
    one = {"所属社区": {"in": ["碧岭社区"]}}
    assert subscribe(client, as_, database, COMMUNITY, granted=one)["scope"] == one
    assert subscribe(client, as_, database, COMMUNITY, granted=COMMUNITY | BIRTHS)["scope"] == COMMUNITY | BIRTHS
    set_by_provider = subscribe(client, as_, database, None, granted=BIRTHS)
    assert (set_by_provider["requested_scope"], set_by_provider["scope"]) == (None, BIRTHS)
    narrower = {"出生日期": {"from": "1990-01-01", "to": "1995-06-30"}}
    assert subscribe(client, as_, database, None, granted=BIRTHS, officer_narrows=narrower)["scope"] == narrower
    rows = all_pages(client, as_["zsj-user"])
    assert [r["公民身份号码"] for r in rows] == [r["公民身份号码"] for r in within(residents, narrower)]


@pytest.mark.parametrize(
    "granted",
    [
        {"所属社区": {"in": ["碧岭社区", "马峦社区"]}},  # a community not asked for
        {"出生日期": {"from": "1980-01-01"}},  # drops the communities asked for
        {"所属社区": {"in": ["碧岭社区"]}, "出生日期": {"from": "1970-01-01", "to": "2000-01-01"}},
    ],
)
def test_an_approval_never_widens_the_scope_asked_for(
    client: TestClient, as_: Headers, database: str, granted: dict[str, Any]
) -> None:
    revoke_every_subscription(database)
    asked = COMMUNITY | BIRTHS
    request = {**POPULATION_REQUEST, "fields": FIELDS, "scope": asked}
    created = status_of(client.post("/subscriptions", json=request, headers=as_["zsj-user"]), 201)
    refused = client.post(f"/subscriptions/{created['id']}/approve", json={"scope": granted},
                          headers=as_["psga-steward"])  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_scope")
    after = status_of(client.get(f"/subscriptions/{created['id']}", headers=as_["zsj-user"]), 200)
    assert (after["status"], after["scope"]) == ("requested", asked)


@pytest.mark.parametrize(
    ("scope", "says"),
    [
        ({"不存在": {"in": ["x"]}}, "not a field of the item"),
        ({"所属社区": {"from": "a"}}, "takes a list of values"),
        ({"出生日期": {"from": "1990-13-01"}}, "not a date"),
        ({"出生日期": {"from": "2000-01-01", "to": "1990-01-01"}}, "from is after to"),
        ({"所属社区": {"in": ["碧岭社区"], "from": "x"}}, None),
        ({"所属社区": {"in": []}}, None),
        ({}, None),
    ],
)
def test_a_scope_that_cannot_hold_is_refused_with_a_clear_error(
    client: TestClient, as_: Headers, database: str, published: list[str], scope: Any, says: str | None
) -> None:
    revoke_every_subscription(database)
    request = {**POPULATION_REQUEST, "fields": FIELDS, "scope": scope}
    refused = client.post("/subscriptions", json=request, headers=as_["zsj-user"])
    assert refused.status_code == 422, refused.text
    if says is not None:
        assert says in refused.json()["detail"]
        assert "1990-13-01" not in refused.text  # the value itself is not repeated


def test_values_are_stored_in_their_canonical_form(client: TestClient, as_: Headers, database: str,
                                                   published: list[str]) -> None:  # fmt: skip
    asked = {"所属社区": {"in": ["汤坑社区", "碧岭社区", "汤坑社区"]}, "出生日期": {"to": "1999-12-31"}}
    created = subscribe(client, as_, database, asked)
    assert created["scope"] == {"出生日期": {"to": "1999-12-31"}, "所属社区": {"in": ["汤坑社区", "碧岭社区"]}}


def test_a_scope_the_version_cannot_meet_serves_nothing(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    """A stored scope that no longer fits (its field gone from the version): refused, never every row."""
    created = subscribe(client, as_, database, COMMUNITY)
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(Subscription).where(Subscription.id == created["id"])
                        .values(scope={"旧字段": {"in": ["x"]}}))  # fmt: skip
        announce_every_item(session)
    engine.dispose()
    for path in ("/data", "/data.csv", "/data.parquet"):
        refused = client.get(f"{ITEM}{path}", headers=as_["zsj-user"])
        assert (refused.status_code, refused.json()["code"]) == (403, "scope_unavailable"), path
    looked_up = client.post(f"{ITEM}/verify", json={"records": [{"公民身份号码": published[0]}]},
                            headers=as_["zsj-user"])  # fmt: skip
    assert looked_up.status_code == 403


@pytest.mark.parametrize(
    ("granted", "asked", "narrower"),
    [
        ({"a": {"in": ["1"]}}, {"a": {"in": ["1", "2"]}}, True),
        ({"a": {"in": ["3"]}}, {"a": {"in": ["1", "2"]}}, False),
        ({"a": {"in": ["5"]}}, {"a": {"from": "1", "to": "9"}}, True),
        ({"a": {"in": ["10"]}}, {"a": {"from": "1", "to": "9"}}, False),
        ({"a": {"from": "2"}}, {"a": {"from": "1"}}, True),
        ({"a": {"to": "2"}}, {"a": {"from": "1"}}, False),
        ({"a": {"from": "1", "to": "3"}}, {"a": {"in": ["1", "2", "3"]}}, False),  # a range is never a list
        ({"a": {"in": ["1"]}, "b": {"in": ["x"]}}, {"a": {"in": ["1"]}}, True),
        ({"b": {"in": ["x"]}}, {"a": {"in": ["1"]}}, False),
        ({"a": {"in": ["1"]}}, None, True),
        (None, {"a": {"in": ["1"]}}, False),
    ],
)
def test_what_narrows_a_scope(granted: Any, asked: Any, narrower: bool) -> None:
    types = {"a": DataType.INTEGER, "b": DataType.STRING}
    assert scopes.narrows(granted, asked, types) is narrower


def test_a_scope_never_tells_a_field_the_subscription_does_not_show(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    """A condition on a field the consumer may not see would tell that field's values (which rows meet it)."""
    revoke_every_subscription(database)
    unasked = {**POPULATION_REQUEST, "fields": ["公民身份号码", "所属社区"], "scope": BIRTHS}  # 出生日期 not asked
    refused = client.post("/subscriptions", json=unasked, headers=as_["zsj-user"])
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_scope")

    request = {**POPULATION_REQUEST, "fields": FIELDS, "scope": BIRTHS}  # 出生日期 is level 3
    created = status_of(client.post("/subscriptions", json=request, headers=as_["zsj-user"]), 201)
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    lowered = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert (lowered.status_code, lowered.json()["code"]) == (422, "invalid_scope")  # it would be masked
    status_of(client.post(f"/subscriptions/{created['id']}/approve", json={"level": 3}, headers=as_["officer"]), 200)
    assert client.get(f"{ITEM}/data", headers=as_["zsj-user"]).status_code == 200

    engine = make_engine(database)  # the approval lowered (or the field raised) since: nothing is served
    with session_scope(engine) as session:
        session.execute(update(Subscription).where(Subscription.id == created["id"]).values(approved_level=2))
        announce_every_item(session)
    engine.dispose()
    for path in ("/data", "/data.csv"):
        hidden = client.get(f"{ITEM}{path}", headers=as_["zsj-user"])
        assert (hidden.status_code, hidden.json()["code"]) == (403, "scope_unavailable"), path


def test_a_decimal_range_holds_as_numbers_or_is_refused_on_sqlite(
    client: TestClient, as_: Headers, database: str, backend: str, published: list[str], samples_dir: Path
) -> None:
    revoke_every_subscription(database)
    scope = {"注册资本万元": {"from": "500", "to": "900"}}
    request = {"item": "SCJG-FR-0001", "fields": ["统一社会信用代码", "注册资本万元"], "purpose": "核对企业注册资本",
               "legal_basis": "数据条例第四十条", "period_days": 30, "scope": scope}  # fmt: skip
    asked = client.post("/subscriptions", json=request, headers=as_["zsj-user"])
    if backend == "sqlite":  # decimals are text there: "5080.97" sorts between "500" and "900"
        assert (asked.status_code, asked.json()["code"]) == (422, "invalid_scope")
        return
    created = status_of(asked, 201)
    if created["status"] != "active":
        client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    engine = make_engine(database)
    with session_scope(engine) as session:  # approved as asked, whoever decides it here
        active = {"status": "active", "approved_level": 4, "expires_at": utcnow() + timedelta(days=1)}
        session.execute(update(Subscription).where(Subscription.id == created["id"]).values(**active))
        announce_every_item(session)
    engine.dispose()
    page = client.get("/items/SCJG-FR-0001/data", params={"limit": 1000}, headers=as_["zsj-user"])
    rows = status_of(page, 200)["rows"]
    values = sorted(Decimal(str(row["注册资本万元"])) for row in rows)
    with (samples_dir / "scjg_enterprise_20261120.csv").open(encoding="gb18030") as export:
        expected = sorted(Decimal(r["注册资本万元"]) for r in csv.DictReader(export)
                          if Decimal("500") <= Decimal(r["注册资本万元"]) <= Decimal("900"))  # fmt: skip
    assert values == expected and any(len(str(value).split(".")[0]) == 3 for value in values)
