"""Push delivery in the console: the consumer's steward adds a target and pauses deliveries from the subscription's
page; its users see them but may not change them; the provider sees no delivery section; ops see the failures."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import POPULATION_REQUEST, revoke_every_subscription, status_of
from tests.api.test_console import signed_in
from tests.api.test_console_renewal import post

Headers = dict[str, dict[str, str]]


def test_targets_and_the_pause_from_the_subscriptions_page(
    client: TestClient, as_: Headers, database: str, published: list[str]
) -> None:
    revoke_every_subscription(database)
    created = status_of(client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]), 201)
    number = created["id"]
    page = f"/console/subscriptions/{number}"

    signed_in(client, "zsj-steward")
    shown = client.get(page).text
    assert "推送" in shown and "添加推送目标" in shown and "未设置推送目标" in shown
    assert post(client, f"{page}/targets", name="Bad Name", kind="webhook", url="https://x.example/h") == 422
    assert post(client, f"{page}/targets", name="street-db", kind="database", db_schema="shared",
                db_table="population", mode="changed", url="ignored-for-a-database") == 303  # fmt: skip
    shown = client.get(page).text
    assert "shared.population" in shown and "ZSJ_STREET_DB_DELIVERY_DSN" in shown and "按主键增量" in shown
    assert post(client, f"{page}/deliveries/paused", paused="true") == 303
    assert "已暂停" in client.get(page).text
    assert status_of(client.get(f"/subscriptions/{number}", headers=as_["zsj-user"]), 200)["deliveries_paused"]

    signed_in(client, "zsj-user")  # sees them, may not change them
    shown = client.get(page).text
    assert "shared.population" in shown and "添加推送目标" not in shown
    assert post(client, f"{page}/deliveries/paused", paused="false") == 422

    signed_in(client, "psga-steward")  # the provider: nothing of where its data goes
    shown = client.get(page).text
    assert "shared.population" not in shown and 'id="delivery"' not in shown

    signed_in(client, "zsj-steward")
    target_id = status_of(client.get(f"/subscriptions/{number}/targets", headers=as_["zsj-steward"]), 200)[0]["id"]
    assert post(client, f"{page}/targets/{target_id}/delete") == 303
    assert "shared.population" not in client.get(page).text
    assert client.get("/console/deliveries?status=failed").status_code == 200
    client.cookies.clear()
