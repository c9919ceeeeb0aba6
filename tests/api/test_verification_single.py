"""A single look-up on PostgreSQL is one statement (catalog/delivery/lookups.py): the row by its key within the scope,
compared, masked and written as JSON by the database, its audit event inserted with it. Its answers are the batch
path's, record for record, and so is its audit event but for the counts of the one record it had."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.delivery import lookups
from catalog.delivery.access_cache import ItemAccess, Remembered
from catalog.items.schemas import ItemStatus
from tests.api.conftest import POPULATION_REQUEST, revoke_every_subscription, status_of
from tests.api.test_scopes import COMMUNITY, subscribe, within

Headers = dict[str, dict[str, str]]
ITEM = "/items/PSGA-RK-0001"
# Masked at level 2: the name, the date of birth and the phone; shown: the sex, the community, the time of update.
SHOWN = ["姓名", "性别", "出生日期", "联系电话", "所属社区", "更新时间"]


@pytest.fixture(scope="module")
def residents(samples_dir: Path, published: list[str]) -> list[dict[str, str]]:
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        return list(csv.DictReader(export))


@pytest.fixture
def single_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How many look-ups took the one-statement path, and where: on the event loop (checked from memory) or in a
    worker thread."""
    taken: list[str] = []
    in_thread, on_loop = lookups.verify_one, lookups.LookUpConnections.verify_one

    def counted(*args: Any, **kwargs: Any) -> Any:
        taken.append("thread")
        return in_thread(*args, **kwargs)

    async def counted_on_loop(*args: Any, **kwargs: Any) -> Any:
        taken.append("loop")
        return await on_loop(*args, **kwargs)

    monkeypatch.setattr(lookups, "verify_one", counted)
    monkeypatch.setattr(lookups.LookUpConnections, "verify_one", counted_on_loop)
    return taken


def verification_of(client: TestClient, as_: Headers, database: str, fields: list[str]) -> int:
    revoke_every_subscription(database)
    asked = {**POPULATION_REQUEST, "kind": "verify", "fields": fields, "purpose": "核验诉求人是否为本辖区居民"}
    created = status_of(client.post("/subscriptions", json=asked, headers=as_["zsj-user"]), 201)
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert status_of(approved, 200)["status"] == "active"
    return int(created["id"])


def each_alone_as_in_a_batch(
    client: TestClient, headers: dict[str, str], database: str, records: list[dict[str, Any]], backend: str,
    single_calls: list[str],
) -> list[dict[str, Any]]:  # fmt: skip
    """The batch's answer, checked against each record sent alone, and each alone's audit event against the batch's."""
    batch = status_of(client.post(f"{ITEM}/verify", json={"records": records}, headers=headers), 200)
    batch_event = _last_events(database, 1)[0]
    taken_before = len(single_calls)
    for record, expected in zip(records, batch["results"], strict=True):
        alone = status_of(client.post(f"{ITEM}/verify", json={"records": [record]}, headers=headers), 200)
        assert {**alone, "results": None} == {**batch, "results": None}  # item, version, key, fields, masked
        assert alone["results"] == [expected], record
    assert len(single_calls) - taken_before == (len(records) if backend == "postgresql" else 0)
    if backend == "postgresql":  # the item and the caller remembered since the batch: on the event loop
        assert single_calls[taken_before:] == ["loop"] * len(records)

    events = _last_events(database, len(records))
    for event, expected in zip(events, batch["results"], strict=True):
        assert event["detail"] == {"records": 1, "matched": int(expected["match"])}
        assert {**event, "detail": None, "id": None, "at": None} == {**batch_event, "detail": None, "id": None,
                                                                     "at": None}  # fmt: skip
        assert event["at"] >= batch_event["at"]
    assert batch_event["detail"] == {"records": len(records), "matched": sum(r["match"] for r in batch["results"])}
    return list(batch["results"])


def _last_events(database: str, count: int) -> list[dict[str, Any]]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "data.verify").order_by(AuditEvent.id.desc()).limit(count)
        ).all()
        rows = [{column.name: getattr(event, column.name) for column in AuditEvent.__table__.c} for event in events]
    engine.dispose()
    return rows[::-1]


def test_a_record_alone_is_answered_and_audited_as_in_a_batch(
    client: TestClient, as_: Headers, database: str, backend: str, residents: list[dict[str, str]],
    single_calls: list[str],
) -> None:  # fmt: skip
    verification_of(client, as_, database, SHOWN)
    first, second, third, fourth = residents[:4]
    records: list[dict[str, Any]] = [
        {"公民身份号码": first["公民身份号码"]},  # the key alone: masked and shown fields
        {"公民身份号码": second["公民身份号码"], "所属社区": second["所属社区"]},  # compared: the same
        {"公民身份号码": third["公民身份号码"], "所属社区": "不存在的社区"},  # compared: another, no match
        {"公民身份号码": fourth["公民身份号码"], "更新时间": fourth["更新时间"], "性别": fourth["性别"]},  # a time too
        {"公民身份号码": fourth["公民身份号码"], "更新时间": "2001-01-01 00:00:00"},  # another time: no match
        {"公民身份号码": f"  {first['公民身份号码']} ", "所属社区": None},  # spaces around, a field given empty
        {"公民身份号码": "440300199001011234"},  # nobody
    ]
    if first["公民身份号码"].isdigit():
        records.append({"公民身份号码": int(first["公民身份号码"])})  # a number in the JSON: its text is the key
    results = each_alone_as_in_a_batch(client, as_["zsj-user"], database, records, backend, single_calls)
    assert [result["match"] for result in results[:7]] == [True, True, False, True, False, True, False]
    shown = results[0]["fields"]
    assert list(shown) == SHOWN and shown["所属社区"] == first["所属社区"] and shown["性别"] == first["性别"]
    assert shown["更新时间"] == first["更新时间"].replace(" ", "T")
    for masked in ("姓名", "出生日期", "联系电话"):
        assert shown[masked] != first[masked]


def test_a_record_alone_keeps_to_the_scope_as_in_a_batch(
    client: TestClient, as_: Headers, database: str, backend: str, residents: list[dict[str, str]],
    single_calls: list[str],
) -> None:  # fmt: skip
    subscribe(client, as_, database, COMMUNITY, kind="verify")
    inside = within(residents, COMMUNITY)[:2]
    outside = [r for r in residents if r["所属社区"] not in COMMUNITY["所属社区"]["in"]][:2]
    records = [{"公民身份号码": r["公民身份号码"]} for r in inside + outside]
    records.append({"公民身份号码": inside[0]["公民身份号码"], "所属社区": inside[0]["所属社区"]})
    results = each_alone_as_in_a_batch(client, as_["zsj-user"], database, records, backend, single_calls)
    assert [result["match"] for result in results] == [True, True, False, False, True]


def test_a_refused_record_alone_is_refused_and_audited_as_in_a_batch(
    client: TestClient, as_: Headers, database: str, residents: list[dict[str, str]]
) -> None:
    verification_of(client, as_, database, SHOWN)
    resident = residents[0]
    refused: list[Callable[[], Any]] = [
        lambda: {"姓名": resident["姓名"]},  # no key
        lambda: {"公民身份号码": resident["公民身份号码"], "姓名": resident["姓名"]},  # masked: no oracle on it
        lambda: {"公民身份号码": resident["公民身份号码"], "户籍地址": resident["户籍地址"]},  # not granted
        lambda: {"公民身份号码": resident["公民身份号码"], "更新时间": "not a time"},  # not of its type
        lambda: {
            "公民身份号码": resident["公民身份号码"][:9] + "\x00" + resident["公民身份号码"][9:]
        },  # no stored value
    ]
    for record in refused:
        for records in ([record()], [record(), {"公民身份号码": resident["公民身份号码"]}]):
            response = client.post(f"{ITEM}/verify", json={"records": records}, headers=as_["zsj-user"])
            assert response.status_code == 422, records
            event = _last_events(database, 1)[0]
            assert (event["outcome"], event["detail"]["reason"]) == ("denied", response.json()["code"])


def test_a_record_alone_on_the_event_loop_survives_its_connections_ending(
    client: TestClient, as_: Headers, database: str, backend: str, residents: list[dict[str, str]],
    single_calls: list[str],
) -> None:  # fmt: skip
    """PostgreSQL restarted, or it ended the look-ups' idle connections: the next look-up is answered (on a new
    connection, the ended ones seen as such without a round trip) and audited once."""
    if backend != "postgresql":
        pytest.skip("the event loop's look-ups serve PostgreSQL only")
    verification_of(client, as_, database, SHOWN)
    record = {"公民身份号码": residents[0]["公民身份号码"]}
    ask = lambda: client.post(f"{ITEM}/verify", json={"records": [record]}, headers=as_["zsj-user"])  # noqa: E731
    for _ in range(2):
        assert status_of(ask(), 200)["results"][0]["match"] is True
    connections = client.app.state.look_ups  # type: ignore[attr-defined]
    pids = [connection.info.backend_pid for connection in connections._idle]
    assert pids
    engine = make_engine(database)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                           {"pids": pids})  # fmt: skip
        ended = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))")
        for _ in range(100):  # ended, and so told to the connections, when their backends are gone
            if connection.scalar(ended, {"pids": pids}):
                break
            time.sleep(0.05)
    engine.dispose()
    before, taken = _last_events(database, 1)[0]["id"], len(single_calls)
    assert status_of(ask(), 200)["results"][0]["match"] is True
    assert single_calls[taken:] == ["loop"]
    after = _last_events(database, 2)
    assert after[0]["id"] == before and after[1]["detail"] == {"records": 1, "matched": 1}  # one event, once
    assert all(connection.info.backend_pid not in pids for connection in connections._idle)


def test_a_record_alone_is_looked_up_in_a_worker_thread_when_the_item_is_not_remembered(
    client: TestClient, as_: Headers, database: str, backend: str, residents: list[dict[str, str]],
    single_calls: list[str],
) -> None:  # fmt: skip
    verification_of(client, as_, database, SHOWN)
    record = {"公民身份号码": residents[0]["公民身份号码"]}
    ask = lambda: client.post(f"{ITEM}/verify", json={"records": [record]}, headers=as_["zsj-user"])  # noqa: E731
    expected = status_of(ask(), 200)
    client.app.state.platform.access._items.clear()  # type: ignore[attr-defined]  # forgotten: read again
    taken = len(single_calls)
    assert status_of(ask(), 200) == expected
    assert status_of(ask(), 200) == expected  # remembered again
    assert single_calls[taken:] == (["thread", "loop"] if backend == "postgresql" else [])


def test_only_plain_constants_are_written_into_the_statement() -> None:
    from sqlalchemy import Integer, String, literal

    assert lookups._written_out(literal("姓名", String())).literal_execute
    assert lookups._written_out(literal(4, Integer())).literal_execute
    assert lookups._written_out(literal("a\\b", String())) is None  # would depend on standard_conforming_strings
    assert lookups._written_out(literal(True, Integer())) is None
    assert lookups._written_out(lookups._bound("value_0", String())) is None  # given at each call


def test_a_remembered_item_answers_from_its_snapshot_alone() -> None:
    """The checks on the event loop read one snapshot of the item, never the database (no session is even used)."""
    snapshot = ItemAccess(1, "PSGA-RK-0001", ItemStatus.PUBLISHED, False, (), None, {})
    remembered = Remembered(snapshot, b"key")
    assert remembered.item(None, "PSGA-RK-0001") is snapshot  # type: ignore[arg-type]
    assert remembered.item(None, "SCJG-FR-0001") is None  # type: ignore[arg-type]
