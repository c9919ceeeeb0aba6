"""The subscription workflow over HTTP on both backends: automatic approval, provider then officer approval,
rejection and revocation with reasons, who may see and decide what, the race of two approvals, expiry."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.access import service as access
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope, utcnow
from catalog.delivery.access_cache import ActiveSubscription, load_item_access
from catalog.items.models import CatalogItem
from catalog.subscriptions import service
from catalog.subscriptions.models import Subscription
from tests.api.conftest import POPULATION_REQUEST, announce_every_item, revoke_every_subscription, status_of

POPULATION = POPULATION_REQUEST
ENTERPRISE = {**POPULATION, "item": "SCJG-FR-0001", "fields": ["统一社会信用代码", "企业名称"]}


def listing_of(response: Any, expected: int) -> list[dict[str, Any]]:
    assert response.status_code == expected, response.text
    body: list[dict[str, Any]] = response.json()
    return body


@pytest.fixture(autouse=True)
def no_open_subscriptions(database: str) -> None:
    revoke_every_subscription(database)


def test_low_level_fields_of_an_unconditional_item_are_approved_at_once(
    client: TestClient, as_: dict[str, dict[str, str]]
) -> None:
    created = status_of(client.post("/subscriptions", json=ENTERPRISE, headers=as_["zsj-user"]), 201)
    assert (created["status"], created["approved_level"], created["provider_decided_by"]) == ("active", 1, "automatic")
    assert created["expires_at"] and created["consumer"] == "zsj" and created["provider"] == "scjg"
    again = client.post("/subscriptions", json=ENTERPRISE, headers=as_["zsj-user"])
    assert status_of(again, 409)["code"] == "subscription_exists"


def test_a_level_3_request_needs_the_provider_then_an_officer(
    client: TestClient, as_: dict[str, dict[str, str]], database: str
) -> None:
    created = status_of(client.post("/subscriptions", json=POPULATION, headers=as_["zsj-user"]), 201)
    assert (created["status"], created["level"], created["needs_officer"]) == ("requested", 3, True)
    path = f"/subscriptions/{created['id']}"

    assert status_of(client.post(f"{path}/approve", headers=as_["zsj-steward"]), 403)["code"] == "forbidden"
    assert status_of(client.get(path, headers=as_["wjj-user"]), 404)["code"] == "subscription_not_found"
    assert status_of(client.post(f"{path}/approve", headers=as_["officer"]), 403)["code"] == "forbidden"

    provider = status_of(client.post(f"{path}/approve", headers=as_["psga-steward"]), 200)
    assert (provider["status"], provider["provider_decided_by"]) == ("provider_approved", "user:psga-steward")
    assert status_of(client.post(f"{path}/approve", headers=as_["psga-steward"]), 403)["code"] == "forbidden"

    active = status_of(client.post(f"{path}/approve", headers=as_["officer"]), 200)
    assert (active["status"], active["approved_level"], active["officer_decided_by"]) == ("active", 3, "user:officer")
    assert (
        status_of(client.post(f"{path}/approve", headers=as_["officer"]), 409)["code"] == "illegal_subscription_change"
    )

    consumers = [s["id"] for s in listing_of(client.get("/subscriptions", headers=as_["zsj-user"]), 200)]
    providers = [s["id"] for s in listing_of(client.get("/subscriptions", headers=as_["psga-steward"]), 200)]
    others = [s["id"] for s in listing_of(client.get("/subscriptions", headers=as_["wjj-user"]), 200)]
    assert created["id"] in consumers and created["id"] in providers and created["id"] not in others

    engine = make_engine(database)
    with session_scope(engine) as session:
        actions = list(session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subscription_id == created["id"], AuditEvent.outcome == "done")
            .order_by(AuditEvent.id)
        ))  # fmt: skip
        denied = session.scalar(select(AuditEvent).where(AuditEvent.principal == "user:zsj-steward",
                                                          AuditEvent.outcome == "denied"))  # fmt: skip
    engine.dispose()
    assert actions == ["subscription.request", "subscription.approve_provider", "subscription.approve_officer"]
    assert denied is not None and denied.action == "subscription.decide"


def test_rejections_and_revocations_need_a_reason_and_the_right_party(
    client: TestClient, as_: dict[str, dict[str, str]]
) -> None:
    requested = status_of(client.post("/subscriptions", json=POPULATION, headers=as_["zsj-user"]), 201)
    path = f"/subscriptions/{requested['id']}"
    assert status_of(client.post(f"{path}/reject", json={"reason": ""}, headers=as_["psga-steward"]), 422)
    assert status_of(client.post(f"{path}/reject", json={"reason": "no"}, headers=as_["zsj-user"]), 403)
    rejected = status_of(client.post(f"{path}/reject", json={"reason": "用途不明确"}, headers=as_["psga-steward"]), 200)
    assert (rejected["status"], rejected["reason"], rejected["ended_by"]) == (
        "rejected",
        "用途不明确",
        "user:psga-steward",
    )
    revoke = client.post(f"{path}/revoke", json={"reason": "x"}, headers=as_["psga-steward"])
    assert status_of(revoke, 409)["code"] == "illegal_subscription_change"

    active = status_of(client.post("/subscriptions", json=ENTERPRISE, headers=as_["zsj-user"]), 201)
    path = f"/subscriptions/{active['id']}"
    assert status_of(client.post(f"{path}/revoke", json={"reason": "x"}, headers=as_["wjj-user"]), 404)
    revoked = status_of(client.post(f"{path}/revoke", json={"reason": "项目结束"}, headers=as_["zsj-user"]), 200)
    assert (revoked["status"], revoked["ended_by"]) == ("revoked", "user:zsj-user")


def test_requests_that_cannot_be_made(client: TestClient, as_: dict[str, dict[str, str]], database: str) -> None:
    assert status_of(client.post("/subscriptions", json=POPULATION), 401)["code"] == "unauthenticated"
    own = {**POPULATION, "item": "ZSJ-MS-0001", "fields": ["事件编号"]}
    assert status_of(client.post("/subscriptions", json=own, headers=as_["zsj-user"]), 422)["code"] == (
        "invalid_subscription_request"
    )
    unknown_field = {**POPULATION, "fields": ["没有的字段"]}
    assert (
        "没有的字段"
        in status_of(client.post("/subscriptions", json=unknown_field, headers=as_["zsj-user"]), 422)["detail"]
    )
    too_long = {**POPULATION, "period_days": 2000}
    assert status_of(client.post("/subscriptions", json=too_long, headers=as_["zsj-user"]), 422)
    missing = {**POPULATION, "item": "NOPE-0001"}
    assert status_of(client.post("/subscriptions", json=missing, headers=as_["zsj-user"]), 404)

    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(CatalogItem).where(CatalogItem.code == "ZSJ-MS-0001").values(sharing_type="not_shared"))
    try:
        complaints = {**POPULATION, "item": "ZSJ-MS-0001", "fields": ["事件编号"]}
        refused = client.post("/subscriptions", json=complaints, headers=as_["wjj-user"])
        body = status_of(refused, 422)
        assert body["code"] == "item_not_shared" and "不予共享" in body["detail"]
    finally:
        with session_scope(engine) as session:
            session.execute(
                update(CatalogItem).where(CatalogItem.code == "ZSJ-MS-0001").values(sharing_type="conditional")
            )
        engine.dispose()


def test_two_approvals_racing_leave_one_consistent_state(client: TestClient, as_: dict[str, dict[str, str]],
                                                         database: str) -> None:  # fmt: skip
    requested = status_of(client.post("/subscriptions", json=POPULATION, headers=as_["zsj-user"]), 201)
    rules = service.Rules(2, 3, 366)
    steward = access.Principal("user:psga-steward", "psga")
    engine = make_engine(database)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def approve() -> None:
        start.wait()
        try:
            with session_scope(engine) as session:
                service.approve(session, rules, requested["id"], steward, as_officer=False)
            outcomes.append("approved")
        except service.IllegalSubscriptionChange:
            outcomes.append("refused")

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_scope(engine) as session:
        final = service.read(session, rules, requested["id"])
        approvals = session.scalars(
            select(AuditEvent).where(
                AuditEvent.subscription_id == requested["id"], AuditEvent.action == "subscription.approve_provider"
            )
        ).all()
    engine.dispose()
    assert sorted(outcomes) == ["approved", "refused"]
    assert final.status is service.SubscriptionStatus.PROVIDER_APPROVED and len(approvals) == 1


def active_subscription(session: Session) -> ActiveSubscription | None:
    """zsj's subscription to the enterprise item, as a data read decides it."""
    item = load_item_access(session, "SCJG-FR-0001")
    return None if item is None else item.subscription_of("zsj", utcnow())


def test_a_subscription_ends_on_time_and_the_scheduled_task_records_it(
    client: TestClient, as_: dict[str, dict[str, str]], database: str
) -> None:
    active = status_of(client.post("/subscriptions", json=ENTERPRISE, headers=as_["zsj-user"]), 201)
    engine = make_engine(database)
    with session_scope(engine) as session:
        assert active_subscription(session) is not None
        session.execute(
            update(Subscription)
            .where(Subscription.id == active["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        announce_every_item(session)
    with session_scope(engine) as session:
        assert active_subscription(session) is None  # reads stop at once, before any task runs
        assert service.expire_due(session) == [active["id"]]
        assert service.expire_due(session) == []
    engine.dispose()
    assert status_of(client.get(f"/subscriptions/{active['id']}", headers=as_["zsj-user"]), 200)["status"] == "expired"
