"""Over HTTP, on both backends: a steward's lowering of a published field (the probe that found the hole: 联系电话,
level 3, PUT to level 1) never reaches a new subscriber before a data officer approves it, and items are
registered as drafts."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import status_of
from tests.catalog.helpers import demo_raw

Headers = dict[str, dict[str, str]]
POPULATION = "PSGA-RK-0001"
PHONE = "联系电话"


def population_declaration() -> dict[str, Any]:
    return copy.deepcopy(next(item for item in demo_raw()["items"] if item["code"] == POPULATION))


def test_a_stewards_lowering_is_a_proposal_and_a_new_subscriber_reads_the_field_masked(
    client: TestClient, as_: Headers, published: list[str]
) -> None:
    lowered = population_declaration()
    phone = next(field for field in lowered["fields"] if field["name"] == PHONE)
    phone.update(level=1, semantic_type="none", masking="none")

    answer = status_of(client.put(f"/items/{POPULATION}", json=lowered, headers=as_["psga-steward"]), 200)

    assert answer["awaiting_review"] == [
        {"field": PHONE, "level": 1, "semantic_type": "none", "masking": "none", "applied": False}
    ]
    served = next(field for field in answer["fields"] if field["name"] == PHONE)
    assert (served["level"], served["semantic_type"], served["masking"]) == (3, "phone", "phone")
    queue = status_of(client.get("/review/queue", params={"department": "psga"}, headers=as_["officer"]), 200)
    [entry] = [entry for entry in queue["entries"] if entry["field"] == PHONE]
    assert entry["level"] == 3 and [(p["source"], p["level"]) for p in entry["proposals"]] == [("steward", 1)]

    # The health department asks for the phone numbers: the provider alone cannot approve a level-3 field.
    request = {"item": POPULATION, "fields": ["所属社区", PHONE], "purpose": "核对居民联系方式",
               "legal_basis": "《深圳经济特区数据条例》第四十条", "period_days": 30}  # fmt: skip
    created = status_of(client.post("/subscriptions", json=request, headers=as_["wjj-user"]), 201)
    assert (created["level"], created["needs_officer"]) == (3, True)
    approved = status_of(client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"]), 200)
    assert approved["status"] == "provider_approved"
    status_of(client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"]), 200)

    page = status_of(client.get(f"/items/{POPULATION}/data", params={"limit": 5}, headers=as_["wjj-user"]), 200)
    assert page["masked_fields"] == [PHONE]
    assert all("****" in row[PHONE] for row in page["rows"] if row[PHONE])

    audit = status_of(client.get("/audit", params={"item": POPULATION, "limit": 50}, headers=as_["officer"]), 200)
    events = audit["events"]
    proposed = [event for event in events if event["action"] == "classification.propose"]
    assert proposed and proposed[0]["principal"] == "user:psga-steward"


def test_an_item_is_registered_as_a_draft(client: TestClient, as_: Headers) -> None:
    item = population_declaration() | {"code": "PSGA-RK-0100", "title": "人口信息（测试）", "status": "published"}

    refused = status_of(client.post("/items", json=item, headers=as_["psga-steward"]), 422)

    assert refused["code"] == "invalid_declaration" and "registered as a draft, not published" in refused["detail"]
    assert client.get("/items/PSGA-RK-0100", headers=as_["officer"]).status_code == 404
    del item["status"]
    created = status_of(client.post("/items", json=item, headers=as_["psga-steward"]), 201)
    assert created["status"] == "draft"
    moved = client.post("/items/PSGA-RK-0100/transitions", json={"to": "in_review"}, headers=as_["psga-steward"])
    status_of(moved, 200)
    refused = status_of(
        client.post("/items/PSGA-RK-0100/transitions", json={"to": "published"}, headers=as_["psga-steward"]), 409
    )
    assert refused["code"] == "fields_not_reviewed"
