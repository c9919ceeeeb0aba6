"""Verification look-ups (数据核验) on both backends: a verification subscription answers, per record the consumer
holds, match or no match by the item's key (the resident ID, which its level would mask), comparing any granted field
it also gives, and returns for a match only the granted fields, masked as reads are; never another column, never a
read of the data. Audited with counts, never the values sent."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from tests.api.conftest import POPULATION_REQUEST, revoke_every_subscription, status_of
from tests.api.test_review import problem

Headers = dict[str, dict[str, str]]
ITEM = "/items/PSGA-RK-0001"
VERIFY_REQUEST = {**POPULATION_REQUEST, "kind": "verify", "fields": ["姓名", "所属社区"],
                  "purpose": "核验诉求人是否为本辖区居民"}  # fmt: skip


@pytest.fixture(scope="module")
def residents(samples_dir: Path) -> list[dict[str, str]]:
    with (samples_dir / "psga_population_20261121.csv").open(encoding="utf-8-sig") as export:
        return list(csv.DictReader(export))


@pytest.fixture
def verifying(client: TestClient, as_: Headers, database: str, published: list[str]) -> int:
    """zsj's verification subscription for the name and the community, approved up to level 2: the name masked."""
    revoke_every_subscription(database)
    created = status_of(client.post("/subscriptions", json=VERIFY_REQUEST, headers=as_["zsj-user"]), 201)
    assert created["kind"] == "verify"
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert status_of(approved, 200)["status"] == "active"
    return int(created["id"])


def verify(client: TestClient, headers: dict[str, str] | None, records: list[dict[str, Any]]) -> Any:
    return client.post(f"{ITEM}/verify", json={"records": records}, headers=headers or {})


def test_each_record_is_matched_by_its_key_and_returns_only_the_granted_fields_masked(
    client: TestClient, as_: Headers, verifying: int, residents: list[dict[str, str]], database: str
) -> None:
    first, second, third = residents[:3]
    records = [
        {"公民身份号码": first["公民身份号码"]},  # the key alone
        {"公民身份号码": second["公民身份号码"], "所属社区": second["所属社区"]},  # and the community it holds
        {"公民身份号码": third["公民身份号码"], "所属社区": "不存在的社区"},  # a resident elsewhere: no match
        {"公民身份号码": "440300199001011234"},  # nobody
    ]
    body = status_of(verify(client, as_["zsj-user"], records), 200)
    assert (body["key"], body["fields"], body["masked_fields"]) == (["公民身份号码"], ["姓名", "所属社区"], ["姓名"])
    assert [result["match"] for result in body["results"]] == [True, True, False, False]
    shown = body["results"][0]["fields"]
    assert set(shown) == {"姓名", "所属社区"} and shown["所属社区"] == first["所属社区"]
    assert shown["姓名"] != first["姓名"] and shown["姓名"].startswith(first["姓名"][0])  # masked: surname only
    assert body["results"][2]["fields"] is None and body["results"][3]["fields"] is None
    text = verify(client, as_["zsj-user"], records).text
    for resident in (first, second):  # the row's other columns never come back, nor the key
        assert resident["联系电话"] not in text and resident["户籍地址"] not in text
        assert resident["公民身份号码"] not in text

    engine = make_engine(database)
    with session_scope(engine) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.verify")
                                .order_by(AuditEvent.id.desc())).first()  # fmt: skip
        indexes = inspect(session.connection()).get_indexes(_version_table(session))
    engine.dispose()
    assert event is not None and (event.detail["records"], event.detail["matched"]) == (4, 2)
    assert first["公民身份号码"] not in str(event.detail)  # counts, never the values sent
    assert any(str(index["name"]).endswith("_key") for index in indexes)  # look-ups read the key index


def _version_table(session: Any) -> str:
    from catalog.ingest.models import ItemVersion
    from catalog.items.models import CatalogItem

    return str(session.scalar(select(ItemVersion.table_name).join(CatalogItem, CatalogItem.current_version_id
                                                                  == ItemVersion.id)
                              .where(CatalogItem.code == "PSGA-RK-0001")))  # fmt: skip


def test_a_verification_subscription_reads_no_data_and_refuses_what_it_does_not_grant(
    client: TestClient, as_: Headers, verifying: int, residents: list[dict[str, str]]
) -> None:
    problem(client.get(f"{ITEM}/data", headers=as_["zsj-user"]), 403, "no_active_subscription")
    problem(client.get(f"{ITEM}/data.csv", headers=as_["zsj-user"]), 403, "no_active_subscription")
    resident = residents[0]
    problem(verify(client, as_["zsj-user"], [{"姓名": resident["姓名"]}]), 422, "invalid_verification")  # no key
    phone = {"公民身份号码": resident["公民身份号码"], "联系电话": resident["联系电话"]}  # not granted: no oracle on it
    problem(verify(client, as_["zsj-user"], [phone]), 422, "invalid_verification")
    too_many = [{"公民身份号码": resident["公民身份号码"]}] * 1001
    assert verify(client, as_["zsj-user"], too_many).status_code == 422
    problem(verify(client, as_["wjj-user"], [{"公民身份号码": resident["公民身份号码"]}]), 403,
            "no_active_subscription")  # fmt: skip
    assert verify(client, None, [{"公民身份号码": resident["公民身份号码"]}]).status_code == 404  # not open data


def test_no_oracle_on_a_masked_field_and_the_key_is_decided_at_its_own_level(
    client: TestClient, as_: Headers, verifying: int, residents: list[dict[str, str]], database: str
) -> None:
    resident = residents[0]
    guess = {"公民身份号码": resident["公民身份号码"], "姓名": resident["姓名"]}  # 姓名 comes masked: not comparable
    problem(verify(client, as_["zsj-user"], [guess]), 422, "invalid_verification")

    revoke_every_subscription(database)  # a read subscription to the community alone: no look-up by the ID
    read = {**POPULATION_REQUEST, "fields": ["所属社区"]}
    created = status_of(client.post("/subscriptions", json=read, headers=as_["zsj-user"]), 201)
    status_of(client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"]), 200)
    problem(
        verify(client, as_["zsj-user"], [{"公民身份号码": resident["公民身份号码"]}]), 403, "no_active_subscription"
    )

    revoke_every_subscription(database)  # a verification of the community is decided at the key's level (3)
    asked = {**VERIFY_REQUEST, "fields": ["所属社区"]}
    verifying_community = status_of(client.post("/subscriptions", json=asked, headers=as_["zsj-user"]), 201)
    assert (verifying_community["level"], verifying_community["needs_officer"]) == (3, True)


def test_a_value_that_is_no_number_is_refused_not_a_server_error() -> None:
    from catalog.classification.types import DataType, MaskingRule
    from catalog.delivery.service import InvalidFilter, ShownField, _typed

    amount = ShownField("金额", "f1", DataType.DECIMAL, False, MaskingRule.NONE)
    for text in ("sNaN", "NaN", "Infinity", "-inf"):
        with pytest.raises(InvalidFilter):
            _typed(amount, text)
