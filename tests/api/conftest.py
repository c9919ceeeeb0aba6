"""One database per test module with the demo catalog and a user per role, and the API in process over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.app import create_app
from catalog.access import service
from catalog.access.changes import ITEM, note_change
from catalog.db import make_engine, session_scope
from catalog.ingest.service import ingest_export
from catalog.items.models import CatalogItem
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription
from tests.catalog.helpers import import_demo

PASSWORD = "correct horse battery staple"
USERS = {
    "psga-steward": ("psga", "steward"),
    "zsj-steward": ("zsj", "steward"),
    "zsj-user": ("zsj", "user"),
    "wjj-user": ("wjj", "user"),
    "officer": ("psga", "data_officer"),
}

SECRET = "api-test-secret-api-test-secret!"
POPULATION_REQUEST = {
    "item": "PSGA-RK-0001",
    "fields": ["公民身份号码", "姓名", "所属社区"],
    "purpose": "核对诉求人户籍信息",
    "legal_basis": "《深圳经济特区数据条例》第四十条",
    "period_days": 90,
}


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data folder of the test run's for apps built with default settings: publishing through the API rewrites
    the pipeline manifest there, never in the working directory."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("data")
        patch.setenv("DATASHARE_DATA_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def database(backend: str, database_factory: Any) -> str:
    url: str = database_factory(backend)
    engine = make_engine(url)
    with session_scope(engine) as session:
        import_demo(session)
        for username, (department, role) in USERS.items():
            service.create_user(session, department, username, username, PASSWORD, [role])
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database, secret_key=SecretStr(SECRET), access_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, str]:
    """An access token per test user."""
    return {username: login(client, username) for username in USERS}


@pytest.fixture(scope="module")
def as_(tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    """Authorization headers per test user."""
    return {username: bearer(token) for username, token in tokens.items()}


@pytest.fixture(scope="module")
def ops(database: str) -> str:
    """An ops person, in the data bureau as the demo's (catalog/access/demo.py)."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        service.create_user(session, "zsj", "ops", "ops", PASSWORD, ["ops"])
    engine.dispose()
    return "ops"


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def published(database: str, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The samples published as version 1; returns the population export's resident IDs."""
    engine = make_engine(database)
    raw = tmp_path_factory.mktemp("raw")
    for code, name in (
        ("PSGA-RK-0001", "psga_population_20261121.csv"),
        ("SCJG-FR-0001", "scjg_enterprise_20261120.csv"),
    ):
        with session_scope(engine) as session:
            data = (samples_dir / name).read_bytes()
            assert ingest_export(session, code, data, name, raw_dir=raw, trigger="test").outcome == "published"
    engine.dispose()
    lines = (samples_dir / "psga_population_20261121.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    return [line.split(",")[0] for line in lines]


def announce_every_item(session: Session) -> None:
    """A test that writes behind the services' back announces it as they would (API processes remember)."""
    for item_id in session.scalars(select(CatalogItem.id)):
        note_change(session, ITEM, item_id)


def revoke_every_subscription(database: str) -> None:
    """A test starts without open subscriptions (a module shares one database)."""
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(Subscription).values(status="revoked"))
        announce_every_item(session)
    engine.dispose()


def status_of(response: Any, expected: int) -> Any:
    assert response.status_code == expected, response.text
    return response.json()
