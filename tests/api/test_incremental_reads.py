"""Reads of an incremental version over HTTP on both backends: pages, downloads, filters, row scopes and verification
look-ups of a version published from a delta answer exactly what they answer on a full export of the same content
(the row numbers aside: a delta's new rows are numbered after the version's)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from catalog.access.service import Principal
from catalog.db import make_engine, session_scope
from catalog.delivery import service as delivery
from catalog.delivery.access_cache import AccessCache
from catalog.ingest import generations
from catalog.ingest.service import IngestOutcome, ingest_export
from catalog.items.models import CatalogItem
from catalog.push.service import _diff
from tests.api.conftest import POPULATION_REQUEST, revoke_every_subscription, status_of

Headers = dict[str, dict[str, str]]
CODE = "PSGA-RK-0001"
ITEM = f"/items/{CODE}"
FIELDS = ["公民身份号码", "姓名", "性别", "出生日期", "联系电话", "户籍地址", "所属社区", "更新时间"]
COMMUNITY = {"所属社区": {"in": ["汤坑社区", "碧岭社区"]}}


def moved(line: str, community: str) -> str:
    cells = line.split(",")
    cells[6], cells[7] = community, "2026-11-21 02:00:00"
    return ",".join(cells)


class Published:
    """The population item declared incremental: version 1 a full export, version 2 a delta (updates, inserts,
    deletions), version 3 a full export of version 2's content."""

    def __init__(self, database: str, samples_dir: Path, raw: Path) -> None:
        self.database, self.raw = database, raw
        first = (samples_dir / "psga_population_20261120.csv").read_text(encoding="utf-8-sig").splitlines()
        newcomers = (samples_dir / "psga_population_20261121.csv").read_text(encoding="utf-8-sig").splitlines()[501:]
        self.header, rows = first[0], first[1:]
        self.before = {line.split(",")[0]: line.split(",")[6] for line in rows}  # the communities of version 1
        self.updates = [moved(line, "碧岭社区" if n % 2 else "汤坑社区") for n, line in enumerate(rows[:40:2])]
        self.inserts, self.deletes = newcomers, rows[1:20:2]
        gone = {line.split(",")[0] for line in self.updates + self.deletes}
        self.content = [line for line in rows if line.split(",")[0] not in gone] + self.updates + self.inserts
        self.set_incremental()
        assert self.ingest("full.csv", [self.header, *rows]).version == 1
        delta = [f"{line},U" for line in self.updates] + [f"{line},I" for line in self.inserts]
        delta += [line.split(",")[0] + ",,,,,,,,D" for line in self.deletes]
        assert self.ingest("delta.csv", [f"{self.header},_op", *delta]).changes is not None
        assert self.ingest("same.csv", [self.header, *self.content]).changes is None

    def set_incremental(self) -> None:
        engine = make_engine(self.database)
        with session_scope(engine) as session:
            session.execute(update(CatalogItem).where(CatalogItem.code == CODE).values(load={"mode": "incremental"}))
        engine.dispose()

    def ingest(self, name: str, lines: list[str]) -> IngestOutcome:
        engine = make_engine(self.database)
        with session_scope(engine) as session:
            data = ("\n".join(lines) + "\n").encode()
            outcome = ingest_export(session, CODE, data, name, raw_dir=self.raw, trigger="test")
        engine.dispose()
        assert outcome.outcome == "published", outcome.reasons
        return outcome


@pytest.fixture(scope="module")
def versions(database: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    return Published(database, samples_dir, tmp_path_factory.mktemp("raw"))


def subscribe(client: TestClient, as_: Headers, database: str, **asked: Any) -> None:
    """zsj's subscription to every field, approved by the steward and the officer at level 3 (nothing masked)."""
    revoke_every_subscription(database)
    request = {**POPULATION_REQUEST, "fields": FIELDS, **asked}
    created = status_of(client.post("/subscriptions", json=request, headers=as_["zsj-user"]), 201)
    status_of(client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"]), 200)
    status_of(client.post(f"/subscriptions/{created['id']}/approve", json={"level": 3}, headers=as_["officer"]), 200)


@pytest.fixture
def reading(client: TestClient, as_: Headers, database: str, versions: Published) -> None:
    subscribe(client, as_, database)


@pytest.fixture
def scoped(client: TestClient, as_: Headers, database: str, versions: Published) -> None:
    subscribe(client, as_, database, scope=COMMUNITY)


def pages(client: TestClient, headers: dict[str, str], version: int, **params: Any) -> list[dict[str, Any]]:
    rows, after = [], 0
    while after is not None:
        page = status_of(client.get(f"{ITEM}/data", params={"limit": 70, "after": after, "version": version,
                                                             **params}, headers=headers), 200)  # fmt: skip
        assert page["version"] == version
        rows += page["rows"]
        after = page["next_after"]
    return rows


def by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their row numbers, in key order."""
    return sorted(({k: v for k, v in row.items() if k != "_row"} for row in rows), key=lambda row: row[FIELDS[0]])


def test_pages_and_filters_of_an_incremental_version_are_a_full_exports(
    client: TestClient, as_: Headers, reading: None, versions: Published
) -> None:
    reader = as_["zsj-user"]
    incremental, full = pages(client, reader, 2), pages(client, reader, 3)
    assert len(incremental) == len(versions.content) == 510
    assert by_key(incremental) == by_key(full)
    assert [row["_row"] for row in incremental] == sorted(row["_row"] for row in incremental)  # keyset order holds
    for community in ("碧岭社区", "马峦社区"):
        filtered = [pages(client, reader, n, filter=f"所属社区:{community}") for n in (2, 3)]
        assert filtered[0] and by_key(filtered[0]) == by_key(filtered[1])
    moved_key = versions.updates[0].split(",")[0]
    found = [pages(client, reader, n, filter=f"公民身份号码:{moved_key}") for n in (1, 2, 3)]
    now = versions.updates[0].split(",")[6]
    assert [[row["所属社区"] for row in rows] for rows in found] == [[versions.before[moved_key]], [now], [now]]


def _csv(body: bytes) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_downloads_of_an_incremental_version_are_a_full_exports(
    client: TestClient, as_: Headers, reading: None, versions: Published
) -> None:
    reader = as_["zsj-user"]
    for kind, rows_of in (("csv", _csv), ("parquet", lambda body: pq.read_table(io.BytesIO(body)).to_pylist())):
        incremental, full = (client.get(f"{ITEM}/data.{kind}", params={"version": n}, headers=reader) for n in (2, 3))
        assert incremental.status_code == full.status_code == 200
        assert incremental.headers["x-datashare-version"] == "2"
        assert by_key(rows_of(incremental.content)) == by_key(rows_of(full.content)), kind
        assert len(rows_of(incremental.content)) == 510


def test_a_row_scope_holds_on_an_incremental_version_as_on_a_full_one(
    client: TestClient, as_: Headers, scoped: None, versions: Published
) -> None:
    reader = as_["zsj-user"]
    incremental, full = pages(client, reader, 2), pages(client, reader, 3)
    assert incremental and {row["所属社区"] for row in incremental} <= {"汤坑社区", "碧岭社区"}
    assert by_key(incremental) == by_key(full)
    downloads = [_csv(client.get(f"{ITEM}/data.csv", params={"version": n}, headers=reader).content) for n in (2, 3)]
    assert len(downloads[0]) == len(incremental) and by_key(downloads[0]) == by_key(downloads[1])


def test_a_delivery_of_changed_keys_reads_the_delta_and_sends_what_comparing_the_versions_sends(
    database: str, scoped: None, versions: Published
) -> None:
    engine = make_engine(database)
    cache = AccessCache(refresh_seconds=0, pseudonym_key=b"test-pseudonym-key")
    with session_scope(engine) as session:
        item_id = session.scalars(select(CatalogItem.id).where(CatalogItem.code == CODE)).one()
        new, old = (delivery.grant_for(session, cache, Principal("user:zsj-user", "zsj"), CODE, n) for n in (2, 1))
        touched = generations.touched_rows(session, item_id, 1, 2)
        assert touched is not None and generations.touched_rows(session, item_id, 1, 3) is None  # another table
        by_delta, by_versions = (_diff(session, new, old, [FIELDS[0]], found) for found in (touched, None))
        assert by_delta is not None and by_versions is not None
        sent = [sorted(_sent(change)) for change in (by_delta, by_versions)]
        gone = [sorted(change.gone_keys or []) for change in (by_delta, by_versions)]
    engine.dispose()
    in_scope = {"汤坑社区", "碧岭社区"}
    assert sent[0] == sent[1] and len(sent[0]) == 20 + sum(line.split(",")[6] in in_scope for line in versions.inserts)
    assert (
        gone[0]
        == gone[1]
        == sorted((line.split(",")[0],) for line in versions.deletes if versions.before[line.split(",")[0]] in in_scope)
    )


def _sent(change: Any) -> list[tuple[Any, ...]]:
    """The rows a change sends, without their row numbers."""
    return [tuple(row.values())[1:] for batch in change.batches for row in batch.to_pylist()]


def test_look_ups_on_an_incremental_version_answer_as_on_a_full_one(
    client: TestClient, as_: Headers, database: str, versions: Published
) -> None:
    subscribe(client, as_, database, kind="verify", fields=["姓名", "所属社区"])
    first = [line.split(",") for line in (versions.updates[0], versions.inserts[0], versions.deletes[0])]
    untouched = versions.content[0].split(",")
    records = [
        {"公民身份号码": first[0][0], "所属社区": first[0][6]},  # updated: its new community matches
        {"公民身份号码": first[0][0], "所属社区": versions.before[first[0][0]]},  # and its old one no more
        {"公民身份号码": first[1][0]},  # inserted
        {"公民身份号码": first[2][0]},  # deleted
        {"公民身份号码": untouched[0], "所属社区": untouched[6]},
    ]

    def answers() -> list[Any]:
        body = status_of(client.post(f"{ITEM}/verify", json={"records": records}, headers=as_["zsj-user"]), 200)
        singles = [status_of(client.post(f"{ITEM}/verify", json={"records": [record]}, headers=as_["zsj-user"]),
                             200)["results"][0] for record in records]  # fmt: skip
        assert singles == body["results"]  # the one-record path (PostgreSQL: one statement) answers alike
        return [body["version"], body["results"]]

    on_full = answers()  # version 3, a full export, is current
    assert [result["match"] for result in on_full[1]] == [True, False, True, False, True]
    resent = [f"{line},U" for line in versions.updates[:3]]  # the same rows again: the content does not change
    assert versions.ingest("resent.csv", [f"{versions.header},_op", *resent]).version == 4
    assert answers() == [4, on_full[1]]
