"""Edges of the workflow and of delivery: a provider's lower level survives the officer's approval, one open
subscription per consumer and item, an ended one does not block a new request, open data for signed-in
callers too, typed Parquet columns, and numbers in CSV left as numbers."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from catalog.db import make_engine, session_scope, utcnow
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription
from tests.api.conftest import SECRET, announce_every_item, revoke_every_subscription

REQUEST = {"item": "PSGA-RK-0001", "fields": ["公民身份号码", "姓名", "所属社区"], "purpose": "核对户籍信息",
           "legal_basis": "数据条例第四十条", "period_days": 30}  # fmt: skip


@pytest.fixture(autouse=True)
def no_open_subscriptions(database: str) -> None:
    revoke_every_subscription(database)


def test_the_providers_lower_level_holds_after_the_officer_approves(
    client: TestClient, as_: dict[str, dict[str, str]]
) -> None:
    created = client.post("/subscriptions", json=REQUEST, headers=as_["zsj-user"]).json()
    path = f"/subscriptions/{created['id']}/approve"
    provider = client.post(path, json={"level": 2}, headers=as_["psga-steward"]).json()
    assert (provider["status"], provider["approved_level"]) == ("provider_approved", 2)
    active = client.post(path, headers=as_["officer"]).json()
    assert (active["status"], active["approved_level"]) == ("active", 2)


def test_one_open_subscription_per_consumer_and_item_even_without_the_check(
    client: TestClient, as_: dict[str, dict[str, str]], database: str
) -> None:
    created = client.post("/subscriptions", json=REQUEST, headers=as_["zsj-user"]).json()
    engine = make_engine(database)
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        first = session.get(Subscription, created["id"])
        assert first is not None
        session.add(Subscription(item_id=first.item_id, consumer_department_id=first.consumer_department_id,
                                 status="requested", fields=["姓名"], purpose="x", legal_basis="x", period_days=1,
                                 requested_by="race"))  # fmt: skip
    engine.dispose()


def test_an_ended_subscription_does_not_block_a_new_request(
    client: TestClient, as_: dict[str, dict[str, str]], database: str
) -> None:
    old = client.post("/subscriptions", json={**REQUEST, "fields": ["所属街道"], "item": "SCJG-FR-0001"},
                      headers=as_["zsj-user"]).json()  # fmt: skip
    assert old["status"] == "active"
    engine = make_engine(database)
    with session_scope(engine) as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Subscription).where(Subscription.id == old["id"]).values(expires_at=past))
        announce_every_item(session)
    engine.dispose()
    again = {**REQUEST, "item": "SCJG-FR-0001", "fields": ["企业名称"]}
    renewed = client.post("/subscriptions", json=again, headers=as_["zsj-user"])
    assert renewed.status_code == 201, renewed.text
    assert client.get(f"/subscriptions/{old['id']}", headers=as_["zsj-user"]).json()["status"] == "expired"


def test_open_data_reads_the_same_signed_in_and_parquet_keeps_dates_typed(
    client: TestClient, as_: dict[str, dict[str, str]], published: list[str]
) -> None:
    anonymous = client.get("/items/SCJG-FR-0001/data", params={"limit": 3}).json()
    signed_in = client.get("/items/SCJG-FR-0001/data", params={"limit": 3}, headers=as_["wjj-user"]).json()
    assert signed_in["fields"] == anonymous["fields"] and signed_in["rows"] == anonymous["rows"]

    parquet = client.get("/items/SCJG-FR-0001/data.parquet")
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 300 and table.schema.field("成立日期").type == pa.date32()


def test_refusals_that_are_not_policy_refusals_are_audited_too(
    client: TestClient, as_: dict[str, dict[str, str]], database: str, published: list[str]
) -> None:
    from sqlalchemy import select

    from catalog.audit.models import AuditEvent

    missing = client.get("/items/SCJG-FR-0001/data", params={"version": 99}, headers=as_["zsj-user"])
    assert missing.status_code == 404
    created = client.post("/subscriptions", json=REQUEST, headers=as_["zsj-user"]).json()
    twice = client.post(f"/subscriptions/{created['id']}/revoke", json={"reason": "x"}, headers=as_["zsj-user"])
    assert twice.status_code == 409  # only an active subscription can be revoked
    engine = make_engine(database)
    with session_scope(engine) as session:
        denied = {
            (event.action, event.detail.get("reason"))
            for event in session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied"))
        }
    engine.dispose()
    assert ("data.read", "version_not_found") in denied
    assert ("subscription.revoke", "illegal_subscription_change") in denied


def test_more_concurrent_requests_than_connections_and_threads_do_not_deadlock(
    as_: dict[str, dict[str, str]], database: str, published: list[str]
) -> None:
    """A request that looked its caller up gives its connection back before it waits for a worker thread: with
    one thread and more requests in flight than the pool's 15 connections, every request is still served
    (without that, 15 requests hold connections waiting for the thread, which waits for a connection)."""
    settings = Settings(database_url=database, secret_key=SecretStr(SECRET), access_refresh_seconds=0, api_threads=1)
    with TestClient(create_app(settings)) as app_client, ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(lambda _: app_client.get("/items/SCJG-FR-0001/data", headers=as_["zsj-user"]).status_code,
                     range(20))
        )  # fmt: skip
    assert statuses == [200] * 20
