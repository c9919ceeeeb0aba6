"""The API's abuse limits (api/limits.py): failed sign-ins lock a user name and a client address out, before any
password is checked, for longer while failures go on; bad credentials and anonymous requests are limited per client
address, before any database look-up; the counts are shared by API processes through Redis; the in-process store
holds a bounded number of counters whatever the number of clients."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from limits import parse
from limits.strategies import FixedWindowRateLimiter
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from api.deps import Platform
from api.limits import BoundedMemoryStorage, Limits, Rates, client_key
from catalog.access import service
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.delivery import access_cache
from catalog.settings import Settings
from tests.api.conftest import PASSWORD, SECRET, bearer, login

REDIS_URL = "redis://127.0.0.1:6379/0"
FIFTEEN_MINUTES = 15 * 60


class Clock:
    """The limits' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(client: TestClient, clock: Clock) -> Iterator[Callable[..., Limits]]:
    """Gives the API process fresh limits on the test's clock (``Rates`` as given); restores its own after."""
    platform = client.app.state.platform  # type: ignore[attr-defined]
    saved = platform.limits

    def install(**rates: str) -> Limits:
        platform.limits = Limits(rates=Rates(**rates), clock=clock)
        return platform.limits  # type: ignore[no-any-return]

    install()
    yield install
    platform.limits = saved


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names whose password was checked (argon2 run), in order."""
    checked: list[str] = []
    authenticate = service.authenticate

    def counting(session: Any, username: str, password: str) -> service.Principal:
        checked.append(username)
        return authenticate(session, username, password)

    monkeypatch.setattr(service, "authenticate", counting)
    return checked


def sign_in(client: TestClient, username: str, password: str, address: str = "testclient") -> Any:
    client_at = TestClient(client.app, client=(address, 50000)) if address != "testclient" else client
    return client_at.post("/auth/login", json={"username": username, "password": password})


def fail(client: TestClient, times: int, username: str = "zsj-user", address: str = "testclient") -> list[int]:
    return [sign_in(client, username, "not the password", address).status_code for _ in range(times)]


def retry_after(response: Any) -> int:
    assert response.status_code == 429, response.text
    return int(response.headers["retry-after"])


def login_audit(database: str, username: str) -> list[AuditEvent]:
    engine = make_engine(database)
    with session_scope(engine) as session:
        mine = (AuditEvent.action == "login", AuditEvent.principal == f"user:{username}")
        rows = list(session.scalars(select(AuditEvent).where(*mine).order_by(AuditEvent.id)))
        session.expunge_all()
    engine.dispose()
    return rows


def test_failed_sign_ins_lock_the_user_out_before_any_password_is_checked(
    client: TestClient, limited: Callable[..., Limits], clock: Clock, password_checks: list[str], database: str
) -> None:
    audited_before = len(login_audit(database, "wjj-user"))
    assert fail(client, 10, "wjj-user") == [401] * 10

    throttled = [sign_in(client, "wjj-user", "not the password") for _ in range(140)]
    right_password = sign_in(client, "wjj-user", PASSWORD)

    assert {response.status_code for response in throttled} == {429}
    assert 0 < retry_after(right_password) <= FIFTEEN_MINUTES
    problem = right_password.json()
    assert problem["code"] == "login_throttled" and "the right password is refused too" in problem["detail"]
    assert password_checks == ["wjj-user"] * 10  # no argon2 work once locked out
    refusals = login_audit(database, "wjj-user")[audited_before:]
    assert [row.detail.get("reason") for row in refusals] == [None] * 10 + ["throttled"] * 141
    assert all(PASSWORD not in str(row.detail) and "not the password" not in str(row.detail) for row in refusals)

    clock.advance(FIFTEEN_MINUTES)
    assert sign_in(client, "wjj-user", PASSWORD).status_code == 200


def test_the_lockout_grows_while_failures_go_on(
    client: TestClient, limited: Callable[..., Limits], clock: Clock
) -> None:
    waits = []
    for _ in range(3):
        assert fail(client, 10, "wjj-user") == [401] * 10
        waits.append(retry_after(sign_in(client, "wjj-user", PASSWORD)))
        clock.advance(waits[-1])
    assert waits[0] <= FIFTEEN_MINUTES < waits[1] <= 3600 - FIFTEEN_MINUTES < waits[2] <= 24 * 3600 - 3600
    assert sign_in(client, "wjj-user", PASSWORD).status_code == 200  # a day after the first failure


def test_a_locked_user_name_is_locked_from_every_address(client: TestClient, limited: Callable[..., Limits]) -> None:
    for address in ("192.0.2.1", "192.0.2.2"):
        assert fail(client, 5, "wjj-user", address) == [401] * 5

    assert retry_after(sign_in(client, "wjj-user", PASSWORD, "192.0.2.3")) > 0
    assert sign_in(client, "zsj-user", PASSWORD, "192.0.2.3").status_code == 200  # other users are not


def test_an_address_trying_many_user_names_is_locked_out(client: TestClient, limited: Callable[..., Limits]) -> None:
    statuses = [sign_in(client, f"guess-{n}", "not the password", "198.51.100.7").status_code for n in range(10)]
    assert statuses == [401] * 10

    assert retry_after(sign_in(client, "zsj-user", PASSWORD, "198.51.100.7")) > 0
    assert sign_in(client, "zsj-user", PASSWORD, "198.51.100.8").status_code == 200


def test_an_address_sending_bad_tokens_is_refused_before_any_look_up(
    client: TestClient, limited: Callable[..., Limits], tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = bearer(tokens["zsj-user"])
    assert client.get("/items", headers=known).status_code == 200  # remembered from now on
    look_ups: list[str] = []
    holder = access_cache.machine_token_holder

    def counting(session: Any, digest: str) -> Any:
        look_ups.append(digest)
        return holder(session, digest)

    monkeypatch.setattr(access_cache, "machine_token_holder", counting)
    unknown = [bearer(f"{service.TOKEN_PREFIX}{uuid.uuid4().hex}") for _ in range(40)]

    statuses = [client.get("/items", headers=headers).status_code for headers in unknown]

    assert statuses == [401] * 30 + [429] * 10
    assert len(look_ups) == 30
    refused = client.get("/items", headers=unknown[0])
    assert refused.json()["code"] == "credentials_throttled" and retry_after(refused) <= 60
    assert client.get("/items", headers=known).status_code == 200  # a credential the process remembers still works
    forged = bearer(login(client, "zsj-user")[:-4] + "AAAA")
    assert client.get("/items", headers=forged).status_code == 401  # a bad signature needs no look-up to refuse


def test_anonymous_requests_are_limited_per_address(
    client: TestClient, limited: Callable[..., Limits], clock: Clock, tokens: dict[str, str]
) -> None:
    limited(anonymous="5/minute")
    here, elsewhere = TestClient(client.app, client=("203.0.113.5", 1)), TestClient(client.app, client=("::1", 1))

    statuses = [here.get("/items").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
    assert 0 < retry_after(here.get("/items")) <= 60
    assert elsewhere.get("/items").status_code == 200
    assert here.get("/items", headers=bearer(tokens["zsj-user"])).status_code == 200  # signed in: its own limit
    assert here.post("/auth/login", json={"username": "zsj-user", "password": PASSWORD}).status_code == 429
    clock.advance(60)
    assert here.get("/items").status_code == 200


def test_ipv6_clients_are_counted_by_their_64_bit_prefix() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "unknown"


def test_the_in_process_store_keeps_a_bounded_number_of_counters() -> None:
    storage = BoundedMemoryStorage(max_keys=1_000)
    limiter, item = FixedWindowRateLimiter(storage), parse("10/15 minutes")

    for n in range(200_000):  # as many distinct clients, within one window
        limiter.hit(item, "address", f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")

    assert len(storage) == 1_000
    newest = "10.3.13.63"  # client 199,999: the oldest counters went first
    assert limiter.get_window_stats(item, "address", newest).remaining == item.amount - 1


def test_expired_counters_leave_room_before_live_ones(clock: Clock) -> None:
    storage = BoundedMemoryStorage(max_keys=2, clock=clock)
    storage.incr("first", 60)
    clock.advance(30)
    storage.incr("second", 60)
    clock.advance(31)  # the first window has ended, the second has not
    storage.incr("third", 60)
    assert (storage.get("second"), storage.get("third"), len(storage)) == (1, 1, 2)
    storage.incr("fourth", 60)  # full of live counters: the oldest goes
    assert (storage.get("second"), storage.get("third"), storage.get("fourth"), len(storage)) == (0, 1, 1, 2)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the local Redis; its keys are deleted after."""
    prefix = f"datashare-test-{uuid.uuid4().hex}"
    yield prefix
    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter(f"{prefix}:*"):
        connection.delete(key)
    connection.close()


def test_api_processes_share_the_counts_through_redis(database: str, redis_prefix: str) -> None:
    settings = Settings(database_url=database, secret_key=SecretStr(SECRET), rate_limit_storage=REDIS_URL)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as other:
        for process in (one, other):  # two processes: two Limits over the same store, as each builds its own
            assert not process.app.state.platform.limits.in_process  # type: ignore[attr-defined]
            process.app.state.platform.limits = Limits(REDIS_URL, key_prefix=redis_prefix)  # type: ignore[attr-defined]

        assert fail(one, 5, "zsj-steward") + fail(other, 5, "zsj-steward") == [401] * 10

        for process in (one, other):
            assert 0 < retry_after(sign_in(process, "zsj-steward", PASSWORD)) <= FIFTEEN_MINUTES
    connection = redis.Redis.from_url(REDIS_URL)
    assert any(connection.scan_iter(f"{redis_prefix}:*"))
    connection.close()


def test_an_unreachable_store_refuses_rather_than_lets_through(client: TestClient) -> None:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    saved, platform.limits = platform.limits, Limits("redis://127.0.0.1:1/0")
    try:
        response = sign_in(client, "zsj-user", PASSWORD)
    finally:
        platform.limits = saved
    assert response.status_code == 503 and response.json()["code"] == "limits_unavailable"


def test_production_warns_when_each_api_process_counts_alone(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine("sqlite://")
    for storage, warned in (("memory://", True), (REDIS_URL, False)):
        caplog.clear()
        settings = Settings(mode="production", secret_key=SecretStr(SECRET), rate_limit_storage=storage)
        with caplog.at_level(logging.WARNING, logger="api.deps"):
            Platform(engine=engine, settings=settings)
        assert ("each counts alone" in caplog.text) is warned
    engine.dispose()
