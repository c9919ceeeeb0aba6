"""The pipeline manifest follows the catalog whatever the entry point (issue 12, point 8): an item published through
the API gains its pipeline, one retired loses it; the manifest is rewritten after the commit, never before it,
and a rolled-back change leaves it as it was."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from api.app import create_app
from catalog.access import service as access
from catalog.db import make_engine, session_scope
from catalog.ingest import manifest
from catalog.ingest.manifest import follow_catalog
from catalog.items import service as items
from catalog.items.models import CatalogItem
from catalog.items.schemas import ItemStatus
from catalog.settings import Settings
from tests.catalog.helpers import OFFICER, approve_every_field, demo_file, import_demo

PASSWORD = "correct horse battery staple"
SECRET = "manifest-test-secret-manifest-test!"
DEMO_PIPELINES = ["PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"]


def pipelines(path: Path) -> list[str]:
    return [entry["item"] for entry in json.loads(path.read_text(encoding="utf-8"))["pipelines"]]


@pytest.fixture
def database(backend: str, database_factory: Any) -> str:
    """The demo catalog (three published items with source systems), a psga steward, and the population item
    again as PSGA-RK-0002, in review with every field approved: ready to be published."""
    url: str = database_factory(backend)
    engine = make_engine(url)
    with session_scope(engine) as session:
        import_demo(session)
        access.create_user(session, "psga", "psga-steward", "psga-steward", PASSWORD, ["steward"])
        population = next(item for item in demo_file().items if item.code == "PSGA-RK-0001")
        items.register_item(session, population.model_copy(update={"code": "PSGA-RK-0002", "status": None}), OFFICER)
        items.transition(session, "PSGA-RK-0002", ItemStatus.IN_REVIEW, OFFICER)
        approve_every_field(session, "PSGA-RK-0002")
    engine.dispose()
    return url


@pytest.fixture
def api(database: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    """The API built with settings of its own (as tests and embedders do), and a steward's headers."""
    settings = Settings(database_url=database, data_dir=tmp_path / "api-data", secret_key=SecretStr(SECRET),
                        access_refresh_seconds=0, _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    with TestClient(create_app(settings)) as client:
        login = client.post("/auth/login", json={"username": "psga-steward", "password": PASSWORD})
        yield client, {"Authorization": f"Bearer {login.json()['access_token']}"}, settings.pipeline_manifest


def test_publishing_and_retiring_through_the_api_rewrite_the_manifest(
    api: tuple[TestClient, dict[str, str], Path],
) -> None:
    client, steward, path = api
    assert not path.exists()  # the catalog was set up behind the API's back

    published = client.post("/items/PSGA-RK-0002/transitions", json={"to": "published"}, headers=steward)
    assert published.status_code == 200, published.text
    assert pipelines(path) == sorted([*DEMO_PIPELINES, "PSGA-RK-0002"])

    retired = client.post("/items/PSGA-RK-0001/transitions", json={"to": "retired"}, headers=steward)
    assert retired.status_code == 200, retired.text
    assert pipelines(path) == ["PSGA-RK-0002", "SCJG-FR-0001", "ZSJ-MS-0001"]


def test_a_change_to_what_a_pipeline_carries_rewrites_it(api: tuple[TestClient, dict[str, str], Path]) -> None:
    client, steward, path = api
    item = client.get("/items/PSGA-RK-0001", headers=steward).json()
    declaration = {key: item[key] for key in ("code", "title", "department", "source_system", "sharing_type",
                                              "open_data", "tags", "fields", "description", "quality")}  # fmt: skip
    changed = client.put("/items/PSGA-RK-0001", headers=steward,
                         json={**declaration, "update_frequency": "0 3 * * *"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    entry = next(entry for entry in json.loads(path.read_text())["pipelines"] if entry["item"] == "PSGA-RK-0001")
    assert entry["schedule"] == "0 3 * * *"


@pytest.fixture
def bound(database: str, tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """An engine that keeps a manifest of its own, written once as it stands."""
    path = tmp_path / "data" / "pipelines.json"
    engine = follow_catalog(make_engine(database), path)
    manifest.refresh_manifest(engine, path)
    yield engine, path
    engine.dispose()


def retire(session: Session, code: str) -> None:
    items.transition(session, code, ItemStatus.RETIRED, OFFICER)


def test_the_manifest_is_rewritten_after_the_commit_and_not_on_a_rollback(bound: tuple[Engine, Path]) -> None:
    engine, path = bound
    before = path.read_bytes()

    with pytest.raises(RuntimeError), session_scope(engine) as session:
        retire(session, "SCJG-FR-0001")
        session.flush()
        raise RuntimeError("the request failed after the change")
    assert path.read_bytes() == before

    with session_scope(engine) as session:
        retire(session, "SCJG-FR-0001")
        assert path.read_bytes() == before  # not before the commit
    assert pipelines(path) == ["PSGA-RK-0001", "ZSJ-MS-0001"]


def test_a_failed_rewrite_is_logged_and_the_change_stands(
    bound: tuple[Engine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    engine, path = bound
    unwritable = path.parent / "not-a-folder"
    unwritable.write_text("")
    follow_catalog(engine, unwritable / "pipelines.json")

    with caplog.at_level(logging.ERROR, logger=manifest.__name__), session_scope(engine) as session:
        retire(session, "ZSJ-MS-0001")

    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert "PIPELINE MANIFEST NOT REWRITTEN" in caplog.text and str(unwritable) in caplog.text
    with session_scope(engine) as session:
        assert session.scalar(select(CatalogItem.status).where(CatalogItem.code == "ZSJ-MS-0001")) == "retired"


def test_a_rewrite_reads_the_catalog_only_once_it_holds_the_lock(bound: tuple[Engine, Path], database: str) -> None:
    """Two commits rewriting at once: the one that writes last read last, so the manifest is never stale."""
    engine, path = bound
    other = make_engine(database)  # another process's commit, whose own rewrite is still to come
    lock = manifest.lock_path(path)
    with manifest.locked(lock):
        writer = threading.Thread(target=lambda: _retire_in_own_unit(engine, "PSGA-RK-0001"))
        writer.start()
        _wait_for_status(other, "PSGA-RK-0001", "retired")  # committed; its rewrite waits for the lock
        with session_scope(other) as session:
            retire(session, "SCJG-FR-0001")
        assert pipelines(path) == DEMO_PIPELINES
    writer.join(timeout=30)
    assert pipelines(path) == ["ZSJ-MS-0001"]  # the rewrite saw both commits
    other.dispose()


def _retire_in_own_unit(engine: Engine, code: str) -> None:
    with session_scope(engine) as session:
        retire(session, code)


def _wait_for_status(engine: Engine, code: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            if session.scalar(select(CatalogItem.status).where(CatalogItem.code == code)) == status:
                return
        time.sleep(0.05)
    raise AssertionError(f"{code} never became {status}")


def test_an_unbound_engine_writes_no_manifest(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(database)
    with session_scope(engine) as session:
        session.execute(update(CatalogItem).where(CatalogItem.code == "ZSJ-MS-0001").values(title="改"))
        retire(session, "SCJG-FR-0001")
    engine.dispose()
    assert list(tmp_path.rglob("pipelines.json")) == []


def test_the_cli_lifecycle_commands_rewrite_it_after_their_commit(datashare: Any, tmp_path: Path) -> None:
    datashare("demo", "--samples", str(tmp_path / "no-samples"))
    path = tmp_path / "data" / "pipelines.json"
    assert pipelines(path) == DEMO_PIPELINES
    datashare("catalog", "retire", "ZSJ-MS-0001")
    assert pipelines(path) == ["PSGA-RK-0001", "SCJG-FR-0001"]
    path.unlink()
    datashare("demo", "--samples", str(tmp_path / "no-samples"))  # a setup command writes it whole, changes or not
    assert pipelines(path) == ["PSGA-RK-0001", "SCJG-FR-0001"]
