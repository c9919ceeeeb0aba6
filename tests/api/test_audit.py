"""GET /audit (filters, keyset pages through the whole trail, the read audited), GET /audit/head and
GET /audit/verification, through the API on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from catalog.audit import chain
from catalog.audit import service as audit
from catalog.audit.models import AuditEvent
from catalog.audit.signing import load_key
from catalog.audit.verification import verify
from catalog.db import make_engine, session_scope
from tests.api.conftest import status_of

Headers = dict[str, dict[str, str]]
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TESTER = "user:api-tester"


@pytest.fixture(scope="module")
def engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def events(engine: Engine) -> int:
    """30 events of one principal, a minute apart; every tenth one a subscription approval in department zsj."""
    rows = [audit.event(TESTER, "zsj" if n % 10 == 0 else "wjj", "subscription.approve" if n % 10 == 0 else "data.read",
                        "done", item_code="PSGA-RK-0001", rows=n) | {"at": T0 + timedelta(minutes=n)}
            for n in range(30)]  # fmt: skip
    with session_scope(engine) as session:
        audit.write(session.connection(), rows)
    return len(rows)


def audit_reads(engine: Engine, outcome: str = "done") -> list[tuple[str, dict[str, Any]]]:
    with session_scope(engine) as session:
        found = session.execute(
            select(AuditEvent.principal, AuditEvent.detail)
            .where(AuditEvent.action == "audit.read", AuditEvent.outcome == outcome)
            .order_by(AuditEvent.id)
        ).all()
    return [(principal, dict(detail)) for principal, detail in found]


def test_head_and_verification_are_not_found_before_a_seal_or_a_verification(client: TestClient, as_: Headers) -> None:
    missing = status_of(client.get("/audit/head", headers=as_["officer"]), 404)
    assert (missing["code"], missing["detail"]) == ("audit_not_sealed", "no audit block has been sealed yet")
    assert status_of(client.get("/audit/verification", headers=as_["officer"]), 404)["code"] == "audit_not_verified"


def test_officers_page_through_the_whole_trail(client: TestClient, as_: Headers, events: int, engine: Engine) -> None:
    seen: list[int] = []
    params: dict[str, Any] = {"principal": TESTER, "limit": 7}
    while True:
        page = status_of(client.get("/audit", params=params, headers=as_["officer"]), 200)
        seen += [event["id"] for event in page["events"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == page["events"][-1]["id"]
        params["before"] = page["next_before"]

    assert len(seen) == events == len(set(seen)) and seen == sorted(seen, reverse=True)
    reads = audit_reads(engine)
    assert len(reads) == 5 and all(principal == "user:officer" for principal, _ in reads)
    assert reads[-1][1] == {"filters": {"principal": TESTER}, "before": params["before"], "limit": 7,
                            "next_before": None}  # fmt: skip


def test_filters_by_action_principal_department_item_and_time(client: TestClient, as_: Headers, events: int) -> None:
    def ids(**params: Any) -> list[int]:
        page = status_of(client.get("/audit", params={"principal": TESTER, "limit": 1000} | params,
                                    headers=as_["officer"]), 200)  # fmt: skip
        return [event["rows"] for event in page["events"]]

    assert ids(action="subscription.approve") == [20, 10, 0]
    assert ids(department="zsj", item="PSGA-RK-0001") == [20, 10, 0]
    assert ids(item="NO-SUCH-ITEM") == []
    assert ids(since="2026-12-01T08:25:00Z", until="2026-12-01T16:28:00+08:00") == [27, 26, 25]
    assert ids(since="2026-12-01T08:28:00") == [29, 28]  # no zone: UTC


def test_others_may_not_read_the_trail_and_bad_filters_are_refused(
    client: TestClient, as_: Headers, engine: Engine
) -> None:
    assert status_of(client.get("/audit", headers=as_["psga-steward"]), 403)["code"] == "forbidden"
    assert client.get("/audit/head", headers=as_["zsj-user"]).status_code == 403
    assert client.get("/audit/verification").status_code == 401
    assert [principal for principal, _ in audit_reads(engine, "denied")][-3:] == [
        "user:psga-steward", "user:zsj-user", "anonymous",
    ]  # fmt: skip
    for params in ({"limit": 0}, {"limit": 1001}, {"before": 0}, {"since": "yesterday"}, {"action": "a" * 65}):
        assert status_of(client.get("/audit", params=params, headers=as_["officer"]), 422)["code"] == "invalid_request"


def test_officers_see_the_signed_head_and_the_last_verification(
    client: TestClient, as_: Headers, engine: Engine, events: int, tmp_path: Path
) -> None:
    key = load_key(tmp_path / "signing-key.pem", create=True, strict=True)
    with session_scope(engine) as session:
        sealed = chain.seal(session, key, block_size=10_000, wait_seconds=5)
    assert sealed.head is not None
    with session_scope(engine) as session:
        verify(session, trusted_keys=frozenset([key.public_key]), heads_file=None, by="test")

    head = status_of(client.get("/audit/head", headers=as_["officer"]), 200)
    assert head == sealed.head.model_dump()
    assert head["last_id"] >= events and head["public_key"] == key.public_key

    result = status_of(client.get("/audit/verification", headers=as_["officer"]), 200)
    assert (result["ok"], result["by"], result["failures"], result["head_block"]) == (True, "test", [], head["block"])
    assert result["rows_checked"] == sealed.sealed_rows


def test_the_routes_and_every_status_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    listing = paths["/audit"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"action", "principal", "department", "item", "since",
                                                          "until", "before", "limit"}  # fmt: skip
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuditPage")
    assert {"401", "403", "422", "429"} <= set(listing["responses"])
    for path in ("/audit/head", "/audit/verification"):
        assert {"200", "401", "403", "404", "429"} <= set(paths[path]["get"]["responses"])
