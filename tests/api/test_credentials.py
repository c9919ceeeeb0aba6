"""Credentials through the API: a new machine token works on its first request, in this API process and in another
one; a stored password hash made with older parameters is replaced at the next sign-in; a too-short password is
an invalid request (422), not a failed sign-in (401)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from api.problems import status_of as http_status_of
from catalog.access import service
from catalog.access.models import UserAccount
from catalog.db import make_engine, session_scope
from catalog.errors import DomainError
from catalog.settings import Settings
from tests.api.conftest import PASSWORD, SECRET, bearer, login, status_of

OLD_HASHER = Argon2Hasher(time_cost=1, memory_cost=8 * 1024)  # parameters weaker than today's recommendation


def api(database: str) -> TestClient:
    """An API process that polls the access change log once a minute, as a busy production process may."""
    settings = Settings(database_url=database, secret_key=SecretStr(SECRET), access_refresh_seconds=60)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def slow_polling(database: str) -> Iterator[TestClient]:
    with api(database) as client:
        yield client


def new_token(client: TestClient, steward_token: str) -> str:
    created = client.post("/departments/psga/tokens", json={"name": "first request"}, headers=bearer(steward_token))
    return str(status_of(created, 201)["token"])


def test_a_new_machine_token_works_on_its_first_request(slow_polling: TestClient, published: list[str]) -> None:
    steward = login(slow_polling, "psga-steward")
    assert slow_polling.get("/items/PSGA-RK-0001", headers=bearer(steward)).status_code == 200  # polled, remembered

    token = new_token(slow_polling, steward)

    status_of(slow_polling.get("/items/SCJG-FR-0001/data", params={"limit": 1}, headers=bearer(token)), 200)


def test_a_token_made_in_another_process_works_on_its_first_request(
    slow_polling: TestClient, database: str, published: list[str]
) -> None:
    steward = login(slow_polling, "psga-steward")
    with api(database) as other:
        assert other.get("/items/PSGA-RK-0001", headers=bearer(steward)).status_code == 200  # polled, remembered
        token = new_token(slow_polling, steward)

        status_of(other.get("/items/SCJG-FR-0001/data", params={"limit": 1}, headers=bearer(token)), 200)


def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(client: TestClient, database: str) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        user = service.create_user(session, "zsj", "old-hash", "old-hash", PASSWORD, ["user"])
        user.password_hash = old_hash = OLD_HASHER.hash(PASSWORD)

    login(client, "old-hash")

    with session_scope(engine) as session:
        upgraded = session.scalars(select(UserAccount.password_hash).where(UserAccount.username == "old-hash")).one()
    engine.dispose()
    current = PasswordHash.recommended().current_hasher
    assert upgraded != old_hash and not current.check_needs_rehash(upgraded) and current.verify(PASSWORD, upgraded)
    login(client, "old-hash")  # the new hash holds the same password


def test_a_wrong_password_leaves_an_old_hash_alone(client: TestClient, database: str) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session:
        user = service.create_user(session, "zsj", "old-hash-2", "old-hash-2", PASSWORD, ["user"])
        user.password_hash = old_hash = OLD_HASHER.hash(PASSWORD)

    response = client.post("/auth/login", json={"username": "old-hash-2", "password": "not the password"})

    assert response.status_code == 401
    with session_scope(engine) as session:
        kept = session.scalars(select(UserAccount.password_hash).where(UserAccount.username == "old-hash-2")).one()
    engine.dispose()
    assert kept == old_hash


def test_a_too_short_password_is_an_invalid_request_not_a_failed_sign_in(database: str) -> None:
    engine = make_engine(database)
    with session_scope(engine) as session, pytest.raises(DomainError) as refused:
        service.create_user(session, "zsj", "short", "short", "12345", ["user"])
    engine.dispose()

    assert not isinstance(refused.value, service.InvalidCredentials)
    assert http_status_of(refused.value) == 422 and "at least 12" in refused.value.message


@pytest.mark.parametrize("username", ["psga-steward\u0000", "psga\nsteward"])
def test_a_user_name_with_control_characters_is_an_invalid_request(client: TestClient, username: str) -> None:
    refused = client.post("/auth/login", json={"username": username, "password": "whatever-it-is"})
    assert refused.status_code == 422, refused.text  # on PostgreSQL a NUL was a database error: a 500
