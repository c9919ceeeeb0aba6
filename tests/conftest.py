"""Database fixtures: every database test runs on SQLite and on PostgreSQL.

Each test run creates its own PostgreSQL database (named after the process and a random suffix), migrated
by Alembic; each test runs inside a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from catalog.db import make_engine
from catalog.migrate import upgrade

pytest_plugins = ("tests.object_store",)  # a real S3-compatible server (SeaweedFS) for the object-storage tests
POSTGRES_ADMIN_URL = os.environ.get(
    "DATASHARE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


def create_postgres_database(prefix: str = "datashare_test") -> str:
    """A new, empty PostgreSQL database of this run's own; returns its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Makes fresh, migrated databases of a backend; drops the PostgreSQL ones at the end."""
    created: list[str] = []

    def make(backend: str, migrate: bool = True) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'datashare.db'}"
        else:
            url = create_postgres_database()
            created.append(url)
        if migrate:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        return url

    yield make
    for url in created:
        drop_postgres_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, database_factory: object) -> Iterator[Engine]:
    url = database_factory(backend)  # type: ignore[operator]
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, whatever the test commits."""
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The demo's sample departmental exports, shipped with the demo catalog."""
    from catalog.cli import SAMPLES

    path = SAMPLES
    assert path.exists(), f"the sample exports are expected at {path}"
    return path


@pytest.fixture
def datashare(
    backend: str, database_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """Runs `datashare ARGS...` in process against a fresh, empty database of the backend; returns the result."""
    from typer.testing import CliRunner

    from catalog.cli import app
    from catalog.settings import get_settings

    monkeypatch.setenv("DATASHARE_DATABASE_URL", database_factory(backend, migrate=False))
    monkeypatch.setenv("DATASHARE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == expect, result.output
        return result

    yield run
    get_settings.cache_clear()
