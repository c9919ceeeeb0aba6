"""GET /freshness and GET /items/{code}/freshness on both backends: ops read every department's items, a steward
their own department's (another's is refused), users and data officers are refused (403, audited), the anonymous
must sign in (401), and an item the caller may not know about is 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.core.result import Ok
from sqlalchemy import select, update

from catalog.access import service
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope, utcnow
from catalog.items.models import CatalogItem, ItemChange
from catalog.ops import feeds
from tests.api.conftest import PASSWORD, bearer, login, status_of

POPULATION, ENTERPRISES, COMPLAINTS = "PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"  # psga, scjg (open data), zsj
Headers = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def database(database: str) -> str:
    """The demo, with an ops user; the population register received just now (on time), the enterprise register
    three days ago (overdue), and the complaints (hourly) never, published a day ago (never received)."""
    engine = make_engine(database)
    now = utcnow()
    with session_scope(engine) as session:
        service.create_user(session, "psga", "ops-li", "运维李", PASSWORD, ["ops"])
        feeds.record(session, POPULATION, feeds.PUBLISHED, at=now)
        feeds.record(session, ENTERPRISES, feeds.DUPLICATE, at=now - timedelta(days=3))
        complaints = session.scalar(select(CatalogItem.id).where(CatalogItem.code == COMPLAINTS))
        a_day_ago = now - timedelta(days=1)
        session.execute(update(ItemChange).where(ItemChange.item_id == complaints).values(changed_at=a_day_ago))
    engine.dispose()
    return database


@pytest.fixture(scope="module")
def ops(client: TestClient) -> dict[str, str]:
    return bearer(login(client, "ops-li"))


def last_refusal(database: str) -> AuditEvent:
    engine = make_engine(database)
    with session_scope(engine) as session:
        found = session.scalars(
            select(AuditEvent).where(AuditEvent.outcome == "denied").order_by(AuditEvent.id.desc())
        ).first()
        assert found is not None
        session.expunge(found)
    engine.dispose()
    return found


def statuses(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["item"], entry["status"]) for entry in body["items"]]


def test_ops_read_every_department_with_the_platform_wide_counts(client: TestClient, ops: dict[str, str]) -> None:
    body = status_of(client.get("/freshness", headers=ops), 200)

    assert statuses(body) == [(POPULATION, "on_time"), (ENTERPRISES, "overdue"), (COMPLAINTS, "never_received")]
    assert body["overall"] == {"department": None, "total": 3, "on_time": 1, "late": 0, "overdue": 1,
                               "never_received": 1}  # fmt: skip
    assert [counts["department"] for counts in body["departments"]] == ["psga", "scjg", "zsj"]
    population = body["items"][0]
    assert (population["title"], population["department"], population["source_system"]) == (
        "人口基本信息", "psga", "population")  # fmt: skip
    assert population["last_received_at"] == population["last_published_at"] == population["last_checked_at"]
    assert population["last_check_outcome"] == "published" and population["late_since"] is None
    enterprises = body["items"][1]
    assert enterprises["last_check_outcome"] == "duplicate" and enterprises["last_published_at"] is None
    assert enterprises["late_since"] is not None and enterprises["due_at"] < body["as_of"]


def test_filters_narrow_the_items_and_the_department_the_counts(client: TestClient, ops: dict[str, str]) -> None:
    overdue = status_of(client.get("/freshness", params={"status": "overdue"}, headers=ops), 200)
    assert statuses(overdue) == [(ENTERPRISES, "overdue")] and overdue["overall"]["total"] == 3
    assert overdue["total"] == 1

    paged = status_of(client.get("/freshness", params={"limit": 1, "offset": 1}, headers=ops), 200)
    assert statuses(paged) == [(ENTERPRISES, "overdue")] and (paged["total"], paged["overall"]["total"]) == (3, 3)
    assert status_of(client.get("/freshness", params={"offset": 3}, headers=ops), 200)["items"] == []
    assert client.get("/freshness", params={"limit": 0}, headers=ops).status_code == 422

    scjg = status_of(client.get("/freshness", params={"department": "scjg"}, headers=ops), 200)
    assert statuses(scjg) == [(ENTERPRISES, "overdue")]
    assert scjg["overall"]["total"] == 1 and [counts["department"] for counts in scjg["departments"]] == ["scjg"]

    assert status_of(client.get("/freshness", params={"department": "nowhere"}, headers=ops), 404)["code"] == (
        "department_not_found")  # fmt: skip
    assert client.get("/freshness", params={"status": "green"}, headers=ops).status_code == 422


def test_a_steward_reads_their_own_department_only(client: TestClient, as_: Headers, database: str) -> None:
    own = status_of(client.get("/freshness", headers=as_["psga-steward"]), 200)
    assert statuses(own) == [(POPULATION, "on_time")] and own["overall"]["total"] == 1
    asked = client.get("/freshness", params={"department": "psga"}, headers=as_["psga-steward"])
    assert statuses(status_of(asked, 200)) == [(POPULATION, "on_time")]

    status_of(client.get("/freshness", params={"department": "zsj"}, headers=as_["psga-steward"]), 403)
    refusal = last_refusal(database)
    assert (refusal.principal, refusal.action, refusal.detail["on_behalf_of"]) == (
        "user:psga-steward", "runs.read", "zsj")  # fmt: skip


@pytest.mark.parametrize("who", ["zsj-user", "officer"])
def test_users_and_data_officers_are_refused_and_audited(
    client: TestClient, as_: Headers, database: str, who: str
) -> None:
    assert status_of(client.get("/freshness", headers=as_[who]), 403)["code"] == "forbidden"
    refusal = last_refusal(database)
    assert (refusal.principal, refusal.action) == (f"user:{who}", "runs.read")


def test_the_anonymous_must_sign_in(client: TestClient) -> None:
    response = client.get("/freshness")
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"


def test_one_item_as_its_stewards_and_ops_read_it(
    client: TestClient, as_: Headers, ops: dict[str, str], database: str
) -> None:
    enterprises = status_of(client.get(f"/items/{ENTERPRISES}/freshness", headers=ops), 200)
    assert (enterprises["item"], enterprises["status"], enterprises["update_frequency"]) == (
        ENTERPRISES, "overdue", "@daily")  # fmt: skip
    own = status_of(client.get(f"/items/{POPULATION}/freshness", headers=as_["psga-steward"]), 200)
    assert own["status"] == "on_time"

    status_of(client.get(f"/items/{COMPLAINTS}/freshness", headers=as_["psga-steward"]), 403)
    refusal = last_refusal(database)
    assert (refusal.principal, refusal.action, refusal.item_code) == (
        "user:psga-steward", "runs.read", COMPLAINTS)  # fmt: skip
    status_of(client.get(f"/items/{COMPLAINTS}/freshness", headers=as_["zsj-user"]), 403)
    assert status_of(client.get("/items/NO-SUCH-ITEM/freshness", headers=ops), 404)["code"] == "item_not_found"


def test_the_anonymous_must_sign_in_for_open_data_and_do_not_learn_of_the_rest(client: TestClient) -> None:
    assert client.get(f"/items/{ENTERPRISES}/freshness").status_code == 401  # open data: the item is known
    assert client.get(f"/items/{POPULATION}/freshness").status_code == 404


def test_the_endpoints_and_their_refusals_are_documented(client: TestClient) -> None:
    paths = status_of(client.get("/openapi.json"), 200)["paths"]
    for path in ("/freshness", "/items/{code}/freshness"):
        assert {"200", "401", "403", "404", "422"} <= set(paths[path]["get"]["responses"]), path


@pytest.mark.parametrize("who", ["ops", "psga-steward"])
def test_generated_requests_get_documented_responses(
    client: TestClient, as_: Headers, ops: dict[str, str], who: str
) -> None:
    from hypothesis import HealthCheck, given, settings

    from tests.api.test_openapi_schemathesis import CHECKS

    headers = ops if who == "ops" else as_[who]
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    found = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    operations = [operation for operation in found if "freshness" in operation.path]
    assert len(operations) == 2
    for operation in operations:

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
