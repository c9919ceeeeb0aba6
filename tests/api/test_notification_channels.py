"""The notification endpoints: a department's stewards (and platform admins) manage its webhooks and no one else
does (refusals audited; another department's webhook is 404 as a missing one is); at most five a department, and
never two with the same secret variable; ops list failed deliveries and retry them; each caller reads the notices
addressed to them only; a consumer opts in to notices of new versions, at request time or later."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from catalog.access import service
from catalog.access.models import UserAccount
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.departments.models import Department
from catalog.notifications import notices
from catalog.notifications.models import Notification, NotificationChannel, NotificationDelivery
from catalog.subscriptions.models import Subscription
from tests.api.conftest import PASSWORD, POPULATION_REQUEST, bearer, login, revoke_every_subscription, status_of

HOOK = {"name": "alerts", "url": "https://hooks.psga.example.gov.cn/datashare"}


@pytest.fixture(scope="module")
def more(database: str, client: TestClient, as_: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The module's callers with ops and a platform admin."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        service.create_user(session, "zsj", "notify-ops", "运维", PASSWORD, ["ops"])
        service.create_user(session, "zsj", "notify-admin", "平台管理员", PASSWORD, ["platform_admin"])
    engine.dispose()
    return {**as_, "ops": bearer(login(client, "notify-ops")), "admin": bearer(login(client, "notify-admin"))}


@pytest.fixture(autouse=True)
def clean(database: str) -> Iterator[None]:
    yield
    engine = make_engine(database)
    with session_scope(engine) as session:
        for table in (NotificationDelivery, Notification, NotificationChannel):
            session.execute(delete(table))
    engine.dispose()


def denied(database: str, action: str) -> list[AuditEvent]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.outcome == "denied")))  # fmt: skip
    engine.dispose()
    return rows


def test_a_departments_steward_manages_its_webhooks(client: TestClient, more: dict[str, dict[str, str]]) -> None:
    made = status_of(client.post("/notifications/channels", json=HOOK, headers=more["psga-steward"]), 201)
    assert (made["department"], made["secret_variable"], made["enabled"]) == (
        "psga",
        "PSGA_ALERTS_WEBHOOK_SECRET",
        True,
    )
    status_of(client.post("/notifications/channels", json=HOOK, headers=more["psga-steward"]), 409)
    changed = client.patch(f"/notifications/channels/{made['id']}", json={"enabled": False},
                           headers=more["psga-steward"])  # fmt: skip
    assert status_of(changed, 200)["enabled"] is False
    listed = status_of(client.get("/notifications/channels", headers=more["psga-steward"]), 200)
    assert [channel["name"] for channel in listed] == ["alerts"]
    by_admin = client.get("/notifications/channels", params={"department": "psga"}, headers=more["admin"])
    assert [channel["id"] for channel in status_of(by_admin, 200)] == [made["id"]]
    assert client.delete(f"/notifications/channels/{made['id']}", headers=more["psga-steward"]).status_code == 204


def test_another_departments_steward_and_users_are_refused_and_audited(
    client: TestClient, more: dict[str, dict[str, str]], database: str
) -> None:
    made = status_of(client.post("/notifications/channels", json=HOOK, headers=more["psga-steward"]), 201)
    before = len(denied(database, "notification_channel.manage"))

    cells = {
        "create": client.post("/notifications/channels", params={"department": "psga"}, json=HOOK,
                              headers=more["zsj-steward"]).status_code,
        "list": client.get("/notifications/channels", params={"department": "psga"},
                           headers=more["zsj-steward"]).status_code,
        "update": client.patch(f"/notifications/channels/{made['id']}", json={"url": "https://evil.example/x"},
                               headers=more["zsj-steward"]).status_code,
        "delete": client.delete(f"/notifications/channels/{made['id']}", headers=more["zsj-steward"]).status_code,
        "user": client.get("/notifications/channels", headers=more["zsj-user"]).status_code,
        "officer": client.get("/notifications/channels", params={"department": "psga"},
                              headers=more["officer"]).status_code,
        "anonymous": client.get("/notifications/channels").status_code,
    }  # fmt: skip

    assert cells == {"create": 403, "list": 403, "update": 404, "delete": 404, "user": 403, "officer": 403,
                     "anonymous": 401}  # fmt: skip
    assert len(denied(database, "notification_channel.manage")) == before + 6
    kept = status_of(client.get("/notifications/channels", headers=more["psga-steward"]), 200)
    assert [(channel["url"], channel["id"]) for channel in kept] == [(HOOK["url"], made["id"])]
    assert client.get("/notifications/channels/999999", headers=more["psga-steward"]).status_code in (404, 405)
    missing = client.patch("/notifications/channels/999999", json={"enabled": True}, headers=more["psga-steward"])
    assert missing.status_code == 404


def test_a_webhook_url_is_http_with_a_host_and_no_credentials(
    client: TestClient, more: dict[str, dict[str, str]]
) -> None:
    for url in ("ftp://hooks.example/x", "https://user:secret@hooks.example/x", "https:///nohost"):
        response = client.post("/notifications/channels", json={"name": "bad", "url": url},
                               headers=more["psga-steward"])  # fmt: skip
        assert response.status_code == 422, url
        assert "secret" not in response.text


def test_ops_see_failed_deliveries_and_retry_them(
    client: TestClient, more: dict[str, dict[str, str]], database: str
) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        service.create_user(session, "psga", "notify-steward", "psga", PASSWORD, ["steward"])
        session.execute(update(UserAccount).where(UserAccount.username == "notify-steward")
                        .values(email="notify-steward@example.gov.cn"))  # fmt: skip
        notices.batch_quarantined(session, "PSGA-RK-0001", 5, ["x"])
        session.execute(update(NotificationDelivery).values(status="gave_up", attempts=8, last_error="SMTP 451"))
    engine.dispose()

    for caller in ("psga-steward", "officer", "zsj-user"):
        assert client.get("/notifications/deliveries", headers=more[caller]).status_code == 403, caller
    failed = status_of(client.get("/notifications/deliveries", params={"failed": True}, headers=more["ops"]), 200)
    assert failed and {row["status"] for row in failed} == {"gave_up"}
    assert {row["kind"] for row in failed} == {"batch_quarantined"}
    assert (
        client.post(f"/notifications/deliveries/{failed[0]['id']}/retry", headers=more["psga-steward"]).status_code
        == 403
    )
    retried = status_of(client.post(f"/notifications/deliveries/{failed[0]['id']}/retry", headers=more["ops"]), 200)
    assert (retried["status"], retried["attempts"]) == ("retrying", 0)
    again = client.post(f"/notifications/deliveries/{failed[0]['id']}/retry", headers=more["ops"])
    assert again.status_code == 200  # still failing: it may be retried again
    assert client.post("/notifications/deliveries/999999/retry", headers=more["ops"]).status_code == 404


def test_each_caller_reads_the_notices_addressed_to_them(
    client: TestClient, more: dict[str, dict[str, str]], database: str
) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        notices.batch_quarantined(session, "PSGA-RK-0001", 6, [])  # psga's stewards, and ops
    engine.dispose()

    def kinds(caller: str) -> list[tuple[str, str]]:
        rows = status_of(client.get("/notifications", headers=more[caller]), 200)
        return sorted((row["kind"], row["audience"]) for row in rows)

    assert kinds("psga-steward") == [("batch_quarantined", "stewards")]
    assert kinds("ops") == [("batch_quarantined", "ops")]
    assert kinds("zsj-steward") == [] and kinds("officer") == []
    stewards_notice = status_of(client.get("/notifications", headers=more["psga-steward"]), 200)[0]["id"]
    assert client.post(f"/notifications/{stewards_notice}/read", headers=more["ops"]).status_code == 404
    assert status_of(client.post(f"/notifications/{stewards_notice}/read", headers=more["psga-steward"]), 200)[
        "read_at"
    ]


def test_a_consumer_opts_in_to_new_versions(client: TestClient, more: dict[str, dict[str, str]], database: str) -> None:
    revoke_every_subscription(database)
    made = status_of(client.post("/subscriptions", json={**POPULATION_REQUEST, "notify_new_versions": True},
                                 headers=more["zsj-user"]), 201)  # fmt: skip
    path = f"/notifications/subscriptions/{made['id']}/new-versions"
    engine = make_engine(database)
    with session_scope(engine) as session:
        assert session.get_one(Subscription, made["id"]).notify_new_versions

    assert client.put(path, json={"enabled": False}, headers=more["wjj-user"]).status_code == 404
    assert client.put(path, json={"enabled": False}, headers=more["psga-steward"]).status_code == 404
    assert status_of(client.put(path, json={"enabled": False}, headers=more["zsj-user"]), 200) == {
        "subscription_id": made["id"], "notify_new_versions": False}  # fmt: skip
    with session_scope(engine) as session:
        assert not session.get_one(Subscription, made["id"]).notify_new_versions
    engine.dispose()


def test_another_departments_channel_is_as_missing_as_a_channel_that_does_not_exist(
    client: TestClient, more: dict[str, dict[str, str]], database: str
) -> None:
    made = status_of(client.post("/notifications/channels", json=HOOK, headers=more["psga-steward"]), 201)
    before = len(denied(database, "notification_channel.manage"))

    for channel_id in (made["id"], 999999):
        update = client.patch(f"/notifications/channels/{channel_id}", json={"enabled": False},
                              headers=more["zsj-steward"])  # fmt: skip
        removal = client.delete(f"/notifications/channels/{channel_id}", headers=more["zsj-steward"])
        assert (update.status_code, removal.status_code) == (404, 404), channel_id
        assert (update.json()["code"], removal.json()["code"]) == ("notification_channel_not_found",) * 2
        assert update.json()["detail"] == f"no notification channel {channel_id}"

    assert len(denied(database, "notification_channel.manage")) == before + 4
    kept = status_of(client.get("/notifications/channels", headers=more["psga-steward"]), 200)
    assert [(channel["id"], channel["enabled"]) for channel in kept] == [(made["id"], True)]


def test_a_department_has_at_most_five_channels(client: TestClient, more: dict[str, dict[str, str]]) -> None:
    for n in range(5):
        status_of(client.post("/notifications/channels", json={**HOOK, "name": f"hook-{n}"},
                              headers=more["psga-steward"]), 201)  # fmt: skip

    refused = status_of(client.post("/notifications/channels", json={**HOOK, "name": "hook-5"},
                                    headers=more["psga-steward"]), 409)  # fmt: skip

    assert refused["code"] == "notification_channel_limit"
    assert refused["detail"] == "psga has 5 channels, the most a department may have: delete one first"


def test_a_channel_whose_secret_variable_is_another_departments_is_refused(
    client: TestClient, more: dict[str, dict[str, str]], database: str
) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.add(Department(code="psga-fj", name_zh="公安分局", name_en="Police sub-bureau", kind="district_unit"))
        service.create_user(session, "psga-fj", "fj-steward", "fj", PASSWORD, ["steward"])
    engine.dispose()
    fj = bearer(login(client, "fj-steward"))
    first = status_of(client.post("/notifications/channels", json={**HOOK, "name": "fj-hook"},
                                  headers=more["psga-steward"]), 201)  # fmt: skip
    clash = status_of(client.post("/notifications/channels", json={**HOOK, "name": "hook"}, headers=fj), 409)

    assert first["secret_variable"] == "PSGA_FJ_HOOK_WEBHOOK_SECRET"
    assert clash["code"] == "notification_channel_secret_variable_taken"
    assert "PSGA_FJ_HOOK_WEBHOOK_SECRET is already another channel's" in clash["detail"]
