"""An item's page in the console: its current version (to the readers of its data or its runs), its recent
batches and their quality (for those who read its runs, as GET /runs does) and the departments subscribed (each to
those who may know of that subscription, as GET /subscriptions/{id} does); field types and semantic types in the
page's language."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import POPULATION_REQUEST
from tests.api.test_console import signed_in

Headers = dict[str, dict[str, str]]
ITEM = "/console/items/PSGA-RK-0001"


def subscribe(client: TestClient, as_: Headers) -> int:
    created = client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]).json()
    client.post(f"/subscriptions/{created['id']}/approve", headers=as_["psga-steward"])
    approved = client.post(f"/subscriptions/{created['id']}/approve", json={"level": 2}, headers=as_["officer"])
    assert approved.json()["status"] == "active", approved.text
    return int(created["id"])


def test_who_sees_the_version_the_batches_and_the_subscribers(
    client: TestClient, as_: Headers, published: list[str]
) -> None:
    subscribe(client, as_)
    batches = client.get("/runs", params={"item": "PSGA-RK-0001"}, headers=as_["psga-steward"]).json()["runs"]

    steward = signed_in(client, "psga-steward").get(ITEM).text  # the provider's steward: everything
    assert "当前版本" in steward and "第 1 版 · 520 行" in steward
    assert "最近批次" in steward and f'href="/console/runs/{batches[0]["batch"]}"' in steward and "通过" in steward
    assert "订阅部门" in steward and '<span class="code">zsj</span>' in steward
    assert "<td>文本</td>" in steward and "<td>string</td>" not in steward and "resident_id" not in steward

    consumer = signed_in(client, "zsj-user").get(ITEM).text  # the consumer: its own subscription, no runs
    assert "第 1 版" in consumer and "最近批次" not in consumer and '<span class="code">zsj</span>' in consumer
    english = client.get(ITEM, headers={"Accept-Language": "en"}).text
    assert "resident ID number" in english and "version 1 · 520 rows" in english and "<td>text</td>" in english

    stranger = signed_in(client, "wjj-user").get(ITEM).text  # a third department: neither
    assert "最近批次" not in stranger and '<span class="code">zsj</span>' not in stranger
    assert "当前版本" not in stranger  # its size and publication: to its data's and its runs' readers only
    assert "没有您可查看的有效订阅。" in stranger

    client.cookies.clear()
    anonymous = client.get(ITEM)
    assert anonymous.status_code == 404  # conditional sharing: not open data, no page for the anonymous
