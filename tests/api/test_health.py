"""Liveness and readiness on both backends: live answers without the database; ready names the check that fails
(database away, schema behind the newest revision, no policy loaded, data folder not writable, a check that hangs)
and says nothing else."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete

from api import health
from api.app import create_app
from catalog.access.models import CasbinRule
from catalog.db import make_engine, session_scope
from catalog.migrate import alembic_config
from catalog.settings import Settings
from tests.api.conftest import SECRET

CHECKS = ["database", "schema", "policy", "data_dir"]


@contextmanager
def app_over(database_url: str, data_dir: Path, **settings: Any) -> Iterator[TestClient]:
    options = {"access_refresh_seconds": 0, "readiness_timeout_seconds": 5.0} | settings
    configured = Settings(database_url=database_url, data_dir=data_dir, secret_key=SecretStr(SECRET), **options)
    with TestClient(create_app(configured)) as client:
        yield client


def failing(response: Any) -> list[str]:
    body = response.json()
    assert set(body) == {"status", "checks"} and list(body["checks"]) == CHECKS, body  # names and states only
    assert set(body["checks"].values()) <= {"ok", "failing"}
    return [name for name, state in body["checks"].items() if state == "failing"]


def unreachable_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":  # a folder where the database file should be: SQLite cannot open it
        (tmp_path / "unreadable.db").mkdir()
        return f"sqlite:///{tmp_path / 'unreadable.db'}"
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres:not-a-password@127.0.0.1:{port}/datashare"


@pytest.fixture
def fresh_database(backend: str, database_factory: Any) -> str:
    return str(database_factory(backend))


def test_live_answers_without_the_database(backend: str, tmp_path: Path) -> None:
    with app_over(unreachable_url(backend, tmp_path), tmp_path) as client:
        for path in ("/health/live", "/health"):
            response = client.get(path)
            assert (response.status_code, response.json()) == (200, {"status": "ok"}), path
            assert response.headers["cache-control"] == "no-store"


def test_ready_when_every_check_passes(fresh_database: str, tmp_path: Path) -> None:
    with app_over(fresh_database, tmp_path) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": dict.fromkeys(CHECKS, "ok")}
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".ready-")]  # the probe is gone


def test_not_ready_while_the_database_is_unreachable_and_nothing_about_it_goes_out(
    backend: str, tmp_path: Path
) -> None:
    url = unreachable_url(backend, tmp_path)
    with app_over(url, tmp_path) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert failing(response) == ["database", "schema", "policy"]
    assert response.json()["status"] == "not_ready"
    for secret in ("not-a-password", "unreadable.db", "127.0.0.1", "psycopg", "sqlite", "Error"):
        assert secret not in response.text


def test_not_ready_while_the_schema_is_behind_the_newest_revision(fresh_database: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_database)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")  # one step below whatever the newest revision is
    engine.dispose()
    with app_over(fresh_database, tmp_path) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert "schema" in failing(response) and "database" not in failing(response)


def test_not_ready_without_an_access_policy(fresh_database: str, tmp_path: Path) -> None:
    engine = make_engine(fresh_database)
    with session_scope(engine) as session:
        session.execute(delete(CasbinRule))  # a process loads the policy on its first poll, whatever its revision
    engine.dispose()
    with app_over(fresh_database, tmp_path) as client:
        response = client.get("/health/ready")
    assert (response.status_code, failing(response)) == (503, ["policy"])


@pytest.mark.parametrize("where", ["missing", "a file"])
def test_not_ready_when_the_data_folder_takes_no_file(fresh_database: str, tmp_path: Path, where: str) -> None:
    data_dir = tmp_path / "data"
    if where == "a file":
        data_dir.write_text("not a folder")
    with app_over(fresh_database, data_dir) as client:
        response = client.get("/health/ready")
    assert (response.status_code, failing(response)) == (503, ["data_dir"])


def test_a_check_that_hangs_fails_within_its_time(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "_database_answers", lambda platform: time.sleep(3))
    with app_over(fresh_database, tmp_path, readiness_timeout_seconds=0.3) as client:
        started = time.monotonic()
        response = client.get("/health/ready")
        elapsed = time.monotonic() - started
    assert (response.status_code, failing(response)) == (503, ["database"])
    assert elapsed < 2.5


def test_a_storm_of_probes_checks_once_a_second(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    monkeypatch.setattr(health, "_database_answers", lambda platform: asked.append(1))
    with app_over(fresh_database, tmp_path) as client:
        assert {client.get("/health/ready").status_code for _ in range(20)} == {200}
        assert len(asked) == 1
        time.sleep(health.REUSED_SECONDS)
        assert client.get("/health/ready").status_code == 200 and len(asked) == 2
