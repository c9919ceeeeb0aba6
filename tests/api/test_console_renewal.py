"""Renewing a subscription in the console: the consumer asks from the subscription's page, the provider's steward and
then a data officer approve it there (each sees the form only when it is theirs to use), and the end moves."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from tests.api.conftest import POPULATION_REQUEST, status_of
from tests.api.test_console import signed_in

Headers = dict[str, dict[str, str]]


def post(client: TestClient, path: str, **data: str) -> int:
    answer = client.post(path, data={"csrf_token": client.cookies["datashare_csrf"], **data}, follow_redirects=False)
    return answer.status_code


def test_a_renewal_asked_and_approved_in_the_console(client: TestClient, as_: Headers, published: list[str]) -> None:
    created = status_of(client.post("/subscriptions", json=POPULATION_REQUEST, headers=as_["zsj-user"]), 201)
    number = created["id"]
    client.post(f"/subscriptions/{number}/approve", headers=as_["psga-steward"])
    old_end = datetime.fromisoformat(
        status_of(client.post(f"/subscriptions/{number}/approve", headers=as_["officer"]), 200)["expires_at"]
    )
    page = f"/console/subscriptions/{number}"

    signed_in(client, "wjj-user")  # a stranger: no such subscription, nothing renewed
    assert post(client, f"{page}/renew", days="30") == 404

    signed_in(client, "zsj-user")
    assert f'action="{page}/renew"' in client.get(page).text
    assert post(client, f"{page}/renew", days="400") == 422  # more than the longest period: said, nothing changed
    assert post(client, f"{page}/renew", days="30") == 303
    asked = client.get(page).text
    assert "续期 30 天待审批" in asked and f'action="{page}/renew"' not in asked
    assert f'action="{page}/approve-reapproval"' not in asked  # not the consumer's to approve

    signed_in(client, "psga-steward")
    assert "申请将订阅" in client.get("/console/notifications").text
    assert post(client, f"{page}/approve-reapproval") == 303
    signed_in(client, "officer")
    assert post(client, f"{page}/approve-reapproval", level="3") == 303

    renewed = status_of(client.get(f"/subscriptions/{number}", headers=as_["zsj-user"]), 200)
    assert renewed["renewal_days"] is None and datetime.fromisoformat(renewed["expires_at"]) == old_end + timedelta(
        days=30)  # fmt: skip
    signed_in(client, "zsj-user")
    assert "已续期，新的到期时间为" in client.get("/console/notifications").text
    client.cookies.clear()
