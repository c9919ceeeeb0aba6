"""Data delivery over HTTP on both backends: only approved fields, masking above the approved level in JSON,
CSV, JSON lines and Parquet, keyset pages, filters, pinned versions, open data, and the audit of each read."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import String, literal, select, update

from api.app import create_app
from catalog.access import service as access
from catalog.audit.models import AuditEvent
from catalog.classification.types import DataType, MaskingRule
from catalog.db import make_engine, session_scope
from catalog.delivery import service as delivery
from catalog.delivery.service import Grant, ShownField, _formula_safe, _formula_safe_sql, csv_chunks, output_schema
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription
from tests.api.conftest import POPULATION_REQUEST, SECRET, announce_every_item, bearer
from tests.catalog.helpers import demo_raw

REQUEST = POPULATION_REQUEST
MASKED_ID = re.compile(r"^\d{4}\*{10}\d{3}[\dX]$")


@pytest.fixture(scope="module")
def subscribed(client: TestClient, as_: dict[str, dict[str, str]], database: str, published: list[str]) -> int:
    """zsj's active subscription to the population item, which the officer approved up to level 2 only: the
    resident ID and the name (level 3) are delivered masked, the community (level 2) is not."""
    created = client.post("/subscriptions", json=REQUEST, headers=as_["zsj-user"]).json()
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert approved.json()["approved_level"] == 2 and approved.json()["status"] == "active"
    return int(created["id"])


def as_text(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{name: "" if value is None else str(value) for name, value in row.items()} for row in rows]


def leaks(text: str, ids: list[str]) -> list[str]:
    return [resident_id for resident_id in ids if resident_id in text]


def test_a_page_returns_approved_fields_masked_above_the_approved_level(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, published: list[str]
) -> None:
    response = client.get("/items/PSGA-RK-0001/data", params={"limit": 200}, headers=as_["zsj-user"])
    assert response.status_code == 200, response.text
    page = response.json()
    assert (page["version"], page["fields"]) == (1, ["公民身份号码", "姓名", "所属社区"])
    assert page["masked_fields"] == ["公民身份号码", "姓名"]
    assert response.headers["x-datashare-version"] == "1"
    assert response.headers["x-datashare-masked-fields"].count(",") == 1
    first = page["rows"][0]
    assert set(first) == {"_row", "公民身份号码", "姓名", "所属社区"}  # nothing that was not asked for
    assert MASKED_ID.match(first["公民身份号码"]) and first["姓名"].endswith("*")
    assert first["所属社区"].endswith("社区")
    assert not leaks(response.text, published)


def test_pages_follow_the_row_numbers_to_the_end(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int
) -> None:
    rows, after = [], 0
    while True:
        page = client.get("/items/PSGA-RK-0001/data", params={"after": after, "limit": 150},
                          headers=as_["zsj-user"]).json()  # fmt: skip
        rows += page["rows"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [row["_row"] for row in rows] == list(range(1, 521))
    too_big = client.get("/items/PSGA-RK-0001/data", params={"limit": 1001}, headers=as_["zsj-user"])
    assert too_big.status_code == 422


def test_filters_apply_to_unmasked_fields_only(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, published: list[str]
) -> None:
    community = client.get("/items/PSGA-RK-0001/data", headers=as_["zsj-user"]).json()["rows"][0]["所属社区"]
    found = client.get("/items/PSGA-RK-0001/data", params={"filter": f"所属社区:{community}", "limit": 1000},
                       headers=as_["zsj-user"]).json()  # fmt: skip
    assert found["rows"] and {row["所属社区"] for row in found["rows"]} == {community}

    probe = client.get("/items/PSGA-RK-0001/data", params={"filter": f"公民身份号码:{published[0]}"},
                       headers=as_["zsj-user"])  # fmt: skip
    assert probe.status_code == 422 and probe.json()["code"] == "invalid_filter"
    assert not leaks(probe.text, published[1:])
    hidden = client.get("/items/PSGA-RK-0001/data", params={"filter": "联系电话:1"}, headers=as_["zsj-user"])
    assert hidden.status_code == 422  # a field the subscription does not include


def test_csv_jsonl_and_parquet_downloads_are_masked_the_same_way(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, published: list[str], database: str
) -> None:
    csv_response = client.get("/items/PSGA-RK-0001/data.csv", headers=as_["zsj-user"])
    assert csv_response.status_code == 200 and csv_response.headers["x-datashare-version"] == "1"
    table = list(csv.DictReader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert len(table) == 520 and list(table[0]) == ["_row", "公民身份号码", "姓名", "所属社区"]
    assert all(MASKED_ID.match(row["公民身份号码"]) for row in table)

    jsonl = client.get("/items/PSGA-RK-0001/data.jsonl", headers=as_["zsj-user"])
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(records) == 520 and all(MASKED_ID.match(record["公民身份号码"]) for record in records)

    parquet = client.get("/items/PSGA-RK-0001/data.parquet", headers=as_["zsj-user"])
    frame = pq.read_table(io.BytesIO(parquet.content)).to_pylist()
    assert len(frame) == 520 and all(MASKED_ID.match(row["公民身份号码"]) for row in frame)
    assert set(frame[0]) == {"_row", "公民身份号码", "姓名", "所属社区"}

    for body in (csv_response.content, jsonl.content, parquet.content):
        assert not leaks(body.decode("utf-8", errors="replace"), published)
    pages = client.get("/items/PSGA-RK-0001/data", params={"limit": 1000}, headers=as_["zsj-user"]).json()["rows"]
    assert as_text(table) == as_text(records) == as_text(frame) == as_text(pages)  # the same text in every format
    engine = make_engine(database)
    with session_scope(engine) as session:
        reads = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "data.read", AuditEvent.subscription_id == subscribed)
        ).all()
    engine.dispose()
    downloads = {read.detail["format"]: read for read in reads if read.detail["format"] != "json"}
    assert set(downloads) == {"csv", "jsonl", "parquet"}
    assert all(read.rows == 520 and read.fields_masked == ["公民身份号码", "姓名"] for read in downloads.values())
    assert all(read.principal == "user:zsj-user" and read.department == "zsj" for read in reads)
    last_page = max((read for read in reads if read.detail["format"] == "json"), key=lambda read: read.id)
    assert (last_page.rows, last_page.version) == (520, 1)
    assert last_page.detail == {"filters": {}, "format": "json", "after": 0}
    assert last_page.fields_returned == REQUEST["fields"] and last_page.fields_masked == ["公民身份号码", "姓名"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    fields = [
        ShownField("备注", "f1", DataType.STRING, False, MaskingRule.REDACT),
        ShownField("金额", "f2", DataType.DECIMAL, False, MaskingRule.REDACT),
        ShownField("数量", "f3", DataType.INTEGER, False, MaskingRule.REDACT),
    ]
    grant = Grant("X", 1, "t", 0, (), tuple(fields), None, b"key")
    starts = ["=", "+", "-", "@", "\t", "\r"]
    columns = {
        "_row": list(range(1, len(starts) + 2)),
        "备注": [start + "SUM(A1)" for start in starts] + ["plain"],
        "金额": ["-1.50"] * (len(starts) + 1),
        "数量": [-3] * (len(starts) + 1),
    }
    batch = pa.RecordBatch.from_pydict(columns, schema=output_schema(grant))
    text = b"".join(csv_chunks(grant, iter([batch]))).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert [row[1] for row in rows] == ["'" + start + "SUM(A1)" for start in starts] + ["plain"]
    assert {row[2] for row in rows} == {"-1.50"} and {row[3] for row in rows} == {"-3"}  # numbers stay numbers


def test_who_may_read_what(client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, database: str) -> None:
    no_subscription = client.get("/items/PSGA-RK-0001/data", headers=as_["wjj-user"])
    assert no_subscription.status_code == 403 and no_subscription.json()["code"] == "no_active_subscription"
    assert client.get("/items/PSGA-RK-0001/data").status_code == 404  # anonymous: not open data
    assert client.get("/items/PSGA-RK-0001/data", params={"version": 9}, headers=as_["zsj-user"]).status_code == 404
    assert client.get("/items/PSGA-RK-0001/data", params={"version": 1}, headers=as_["zsj-user"]).status_code == 200

    engine = make_engine(database)
    with session_scope(engine) as session:
        _, secret = access.create_machine_token(session, "zsj", "sync", 30, "test")
    system = client.get("/items/PSGA-RK-0001/data", headers=bearer(secret))
    assert system.status_code == 200 and system.json()["masked_fields"] == ["公民身份号码", "姓名"]

    open_data = client.get("/items/SCJG-FR-0001/data", params={"limit": 5})
    assert open_data.status_code == 200
    assert "法定代表人" not in open_data.json()["fields"]  # level 3: never in open data
    assert open_data.json()["fields"][:2] == ["统一社会信用代码", "企业名称"]

    with session_scope(engine) as session:
        denied = session.scalar(
            select(AuditEvent).where(AuditEvent.principal == "user:wjj-user", AuditEvent.action == "data.read")
        )
        session.execute(update(Subscription).where(Subscription.id == subscribed).values(status="revoked"))
        announce_every_item(session)
    assert denied is not None and denied.outcome == "denied"
    assert client.get("/items/PSGA-RK-0001/data", headers=as_["zsj-user"]).status_code == 403
    with session_scope(engine) as session:
        session.execute(update(Subscription).where(Subscription.id == subscribed).values(status="active"))
        announce_every_item(session)
    engine.dispose()


def test_officers_read_the_audit_trail_and_others_may_not(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int
) -> None:
    client.get("/items/PSGA-RK-0001/data", headers=as_["zsj-user"])
    trail = client.get("/audit", params={"item": "PSGA-RK-0001", "limit": 5}, headers=as_["officer"])
    assert trail.status_code == 200
    latest = trail.json()["events"][0]
    assert (latest["action"], latest["principal"], latest["fields_masked"]) == (
        "data.read",
        "user:zsj-user",
        ["公民身份号码", "姓名"],
    )
    assert client.get("/audit", headers=as_["psga-steward"]).status_code == 403
    assert client.get("/audit").status_code == 401


def test_a_raised_level_masks_the_next_page(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int
) -> None:
    declaration = copy.deepcopy(next(item for item in demo_raw()["items"] if item["code"] == "PSGA-RK-0001"))
    declaration.pop("status", None)
    community = next(field for field in declaration["fields"] if field["name"] == "所属社区")
    before = client.get("/items/PSGA-RK-0001/data", params={"limit": 1}, headers=as_["zsj-user"]).json()
    assert before["masked_fields"] == ["公民身份号码", "姓名"]

    community["level"] = 3
    changed = client.put("/items/PSGA-RK-0001", json=declaration, headers=as_["psga-steward"])
    assert changed.status_code == 200, changed.text
    after = client.get("/items/PSGA-RK-0001/data", params={"limit": 1}, headers=as_["zsj-user"]).json()
    assert after["masked_fields"] == ["公民身份号码", "姓名", "所属社区"]
    assert after["rows"][0]["所属社区"] == "*" * len(before["rows"][0]["所属社区"])

    # Lowering it back is the steward's proposal: the field stays masked until an officer decides, and then until
    # the subscription is approved again (a fall unmasks nothing by itself).
    community["level"] = 2
    lowered = client.put("/items/PSGA-RK-0001", json=declaration, headers=as_["psga-steward"])
    assert lowered.json()["awaiting_review"][0]["applied"] is False
    again = client.get("/items/PSGA-RK-0001/data", params={"limit": 1}, headers=as_["zsj-user"]).json()
    assert again["masked_fields"] == ["公民身份号码", "姓名", "所属社区"]
    decision = {"item": "PSGA-RK-0001", "field": "所属社区", "level": 2, "reason": "社区名称不可识别个人"}
    assert client.post("/review/decisions", json={"decisions": [decision]}, headers=as_["officer"]).status_code == 200
    assert client.post(f"/subscriptions/{subscribed}/reapproval", headers=as_["zsj-user"]).status_code == 200
    for who, body in (("psga-steward", None), ("officer", {"level": 2})):
        approved = client.post(f"/subscriptions/{subscribed}/reapproval/approve", json=body, headers=as_[who])
        assert approved.status_code == 200, approved.text
    restored = client.get("/items/PSGA-RK-0001/data", params={"limit": 1}, headers=as_["zsj-user"]).json()
    assert restored["masked_fields"] == ["公民身份号码", "姓名"]


def test_another_api_process_follows_a_change_within_its_refresh_interval(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, database: str
) -> None:
    interval = 0.3
    settings = Settings(database_url=database, secret_key=SecretStr(SECRET), access_refresh_seconds=interval)
    engine = make_engine(database)
    with TestClient(create_app(settings)) as other:
        assert other.get("/items/PSGA-RK-0001/data", headers=as_["zsj-user"]).status_code == 200
        with session_scope(engine) as session:  # the consumer's subscription revoked by another process
            session.execute(update(Subscription).where(Subscription.id == subscribed).values(status="revoked"))
            announce_every_item(session)
        changed_at = time.monotonic()
        while other.get("/items/PSGA-RK-0001/data", headers=as_["zsj-user"]).status_code == 200:
            assert time.monotonic() - changed_at < interval + 0.5, "the other process never forgot the subscription"
            time.sleep(0.05)
        with session_scope(engine) as session:
            session.execute(update(Subscription).where(Subscription.id == subscribed).values(status="active"))
            announce_every_item(session)
    engine.dispose()


def test_postgresql_neutralises_formula_cells_as_the_reference_does(database: str) -> None:
    """On PostgreSQL the database writes CSV downloads: its formula guard gives the reference's cells."""
    if not database.startswith("postgresql"):
        pytest.skip("the guard as SQL serves PostgreSQL only")
    cells = ["=SUM(A1)", "+1", "-12.50", "@x", "\tx", "\rx", "plain", "", "'quoted", "孙*"]
    reference = _formula_safe(pa.array(cells, pa.string())).to_pylist()
    engine = make_engine(database)
    with engine.connect() as connection:
        in_sql = [connection.scalar(select(_formula_safe_sql(literal(cell, String)))) for cell in cells]
    engine.dispose()
    assert in_sql == reference and reference[:6] == ["'" + cell for cell in cells[:6]]


def test_postgresql_writes_the_same_page_whatever_the_length_of_the_field_names(
    client: TestClient, as_: dict[str, dict[str, str]], subscribed: int, database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """PostgreSQL names a JSON object's keys after its columns, whose names it cuts at 63 bytes: items with longer
    field names get their objects written key by key, the same page."""
    if not database.startswith("postgresql"):
        pytest.skip("PostgreSQL writes the JSON of pages itself")
    params = {"limit": 7, "after": 3}
    as_columns = client.get("/items/PSGA-RK-0001/data", params=params, headers=as_["zsj-user"])
    filtered = {**params, "filter": "所属社区:" + as_columns.json()["rows"][0]["所属社区"]}
    as_columns_filtered = client.get("/items/PSGA-RK-0001/data", params=filtered, headers=as_["zsj-user"])
    monkeypatch.setattr(delivery, "POSTGRESQL_NAME_BYTES", 0)
    delivery._prepared_json_page.cache_clear()
    key_by_key = client.get("/items/PSGA-RK-0001/data", params=params, headers=as_["zsj-user"])
    key_by_key_filtered = client.get("/items/PSGA-RK-0001/data", params=filtered, headers=as_["zsj-user"])
    delivery._prepared_json_page.cache_clear()
    assert as_columns.status_code == key_by_key.status_code == 200
    assert as_columns.json() == key_by_key.json() and len(key_by_key.json()["rows"]) == 7
    assert as_columns_filtered.status_code == 200, as_columns_filtered.text
    assert as_columns_filtered.json() == key_by_key_filtered.json() and as_columns_filtered.json()["rows"]
    assert list(key_by_key.json()["rows"][0]) == ["_row", "公民身份号码", "姓名", "所属社区"]
