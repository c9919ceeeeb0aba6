"""Renewing a subscription before it ends, on both backends: the approval rules run again at the fields' current
levels (the provider's steward, then a data officer from the officer level), the data keeps flowing as approved
until the old end meanwhile, and an approved renewal moves the end; every step audited and notified."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope, utcnow
from catalog.subscriptions.models import Subscription
from tests.api.conftest import POPULATION_REQUEST, announce_every_item, revoke_every_subscription, status_of
from tests.api.test_review import problem

Headers = dict[str, dict[str, str]]


@pytest.fixture
def active(client: TestClient, as_: Headers, database: str, published: list[str]) -> dict[str, Any]:
    """zsj's subscription to the population item, approved by the provider's steward and an officer (level 3)."""
    revoke_every_subscription(database)
    created = status_of(client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]), 201)
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = status_of(client.post(f"/subscriptions/{created['id']}/approve", headers=as_["officer"]), 200)
    assert approved["status"] == "active"
    return dict(approved)


def renew(client: TestClient, as_: Headers, number: int, days: int, who: str = "zsj-user") -> Any:
    return client.post(f"/subscriptions/{number}/renew", json={"days": days}, headers=as_[who])


def kinds_for(client: TestClient, as_: Headers, who: str, number: int) -> list[str]:
    listed = status_of(client.get("/notifications", headers=as_[who]), 200)
    return [notice["kind"] for notice in listed if notice["subscription_id"] == number]


def test_a_renewal_runs_the_approval_rules_again_and_moves_the_end(
    client: TestClient, as_: Headers, active: dict[str, Any], database: str
) -> None:
    number, old_end = active["id"], datetime.fromisoformat(active["expires_at"])
    pending = status_of(renew(client, as_, number, 30), 200)
    assert (pending["reapproval_status"], pending["renewal_days"], pending["expires_at"]) == (
        "requested", 30, active["expires_at"])  # fmt: skip
    assert "renewal_awaits_approval" in kinds_for(client, as_, "psga-steward", number)
    data = client.get("/items/PSGA-RK-0001/data", params={"limit": 1}, headers=as_["zsj-user"])
    assert data.status_code == 200  # the data keeps flowing while the renewal is decided
    problem(renew(client, as_, number, 30), 409, "illegal_subscription_change")  # one pending at a time

    steward = status_of(client.post(f"/subscriptions/{number}/reapproval/approve", headers=as_["psga-steward"]), 200)
    assert steward["reapproval_status"] == "provider_approved"  # level 3: an officer decides too
    assert "renewal_awaits_approval" in kinds_for(client, as_, "officer", number)
    renewed = status_of(client.post(f"/subscriptions/{number}/reapproval/approve", json={"level": 2},
                                    headers=as_["officer"]), 200)  # fmt: skip
    assert (renewed["reapproval_status"], renewed["renewal_days"], renewed["approved_level"]) == (None, None, 2)
    assert datetime.fromisoformat(renewed["expires_at"]) == old_end + timedelta(days=30)
    assert set(renewed["masked_fields"]) == {"公民身份号码", "姓名"}  # approved again at level 2: masked above it
    assert "renewal_decided" in kinds_for(client, as_, "zsj-user", number)

    engine = make_engine(database)
    with session_scope(engine) as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.subscription_id == number)).all()
    engine.dispose()
    assert {"subscription.renewal_request", "subscription.reapproval_approve_provider", "subscription.renew"} <= set(
        actions)  # fmt: skip


def test_a_renewal_turned_down_leaves_the_end_as_it_was(
    client: TestClient, as_: Headers, active: dict[str, Any]
) -> None:
    number = active["id"]
    status_of(renew(client, as_, number, 60), 200)
    turned_down = client.post(f"/subscriptions/{number}/reapproval/reject", json={"reason": "用途已完成"},
                              headers=as_["psga-steward"])  # fmt: skip
    body = status_of(turned_down, 200)
    assert (body["status"], body["reapproval_status"], body["expires_at"]) == ("active", None, active["expires_at"])
    assert kinds_for(client, as_, "zsj-user", number)[0] == "renewal_decided"


def test_only_the_consumer_renews_within_the_longest_period_and_before_the_end(
    client: TestClient, as_: Headers, active: dict[str, Any], database: str
) -> None:
    number = active["id"]
    problem(renew(client, as_, number, 30, "psga-steward"), 403, "forbidden")  # the provider does not ask
    problem(renew(client, as_, number, 30, "wjj-user"), 404, "subscription_not_found")  # a stranger: no such thing
    problem(renew(client, as_, number, 367), 422, "invalid_subscription_request")  # more than the longest period
    assert renew(client, as_, number, 0).status_code == 422

    engine = make_engine(database)
    with session_scope(engine) as session:  # its end passed before the scheduler marked it expired
        session.execute(update(Subscription).where(Subscription.id == number)
                        .values(expires_at=utcnow() - timedelta(minutes=1)))  # fmt: skip
        announce_every_item(session)
    engine.dispose()
    ended = problem(renew(client, as_, number, 30), 409, "illegal_subscription_change")
    assert ended["detail"] == f"subscription {number} has ended: request a new one"


def test_a_renewal_asks_for_no_more_than_was_approved(client: TestClient, as_: Headers, database: str,
                                                     published: list[str]) -> None:  # fmt: skip
    revoke_every_subscription(database)
    created = status_of(client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]), 201)
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = status_of(client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2},
                                     headers=as_["officer"]), 200)  # fmt: skip
    pending = status_of(renew(client, as_, approved["id"], 30), 200)
    assert pending["reapproval_level"] == 2  # what was approved, not the fields' level 3
    renewed = status_of(client.post(f"/subscriptions/{approved['id']}/reapproval/approve",
                                    headers=as_["psga-steward"]), 200)  # fmt: skip
    assert (renewed["approved_level"], renewed["reapproval_status"]) == (2, None)  # below the officer level: done
    assert renewed["masked_fields"] == approved["masked_fields"]
