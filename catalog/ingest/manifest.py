"""The pipeline manifest: what the DAG file needs to know about each item, so that parsing DAGs never touches the
database (DESIGN.md: cheap DAG parsing).

The manifest follows the catalog whatever the entry point (API, command line, an import): a catalog service that
changes what must be pulled marks its session (``rewrite_after_commit``), and after that session's commit, never
before it, the manifest is rebuilt from the committed catalog and replaced whole. A rolled-back change rewrites
nothing. Where the manifest lives is bound to the engine (``follow_catalog``), so an API built with its own
settings writes into its own data folder; an engine bound to none (a test's, a script's) rewrites nothing.

It lives in the data folder (``<data dir>/pipelines.json``) or, when the dag-processor runs on another machine than
the API and the commands, on object storage (``DATASHARE_MANIFEST_URL``): written whole by one PUT, so a reader gets
the old object or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from catalog import logsafe, storage
from catalog.db import READ_ONLY, session_scope
from catalog.departments.models import Department, SourceSystem
from catalog.items.models import CatalogItem

PIPELINE_STATUSES = ("published",)
# What an item's manifest entry carries of its declaration (its department's and source system's codes included).
MANIFEST_ATTRIBUTES = ("title", "update_frequency", "department", "source_system")
MANIFEST_OPTION = "datashare_pipeline_manifest"  # engine execution option: where this catalog's manifest lives
REWRITE_PENDING = "datashare_pipelines_changed"  # session.info key: rewrite the manifest after the commit
# PostgreSQL advisory lock held while a manifest on object storage is rebuilt and written (by any host's process).
SHARED_MANIFEST_LOCK = 0x64617461_73686172  # "datashar"
ManifestLocation = Path | str  # a local file, or an object-store URL
log = logsafe.logger(__name__)


def build_manifest(session: Session) -> list[dict[str, Any]]:
    """One entry per published item whose exports are pulled from a source system."""
    statement = (
        select(CatalogItem.code, CatalogItem.title, CatalogItem.update_frequency, Department.code, SourceSystem)
        .join(Department, CatalogItem.department_id == Department.id)
        .join(SourceSystem, CatalogItem.source_system_id == SourceSystem.id)
        .where(CatalogItem.status.in_(PIPELINE_STATUSES))
        .order_by(CatalogItem.code)
    )
    return [
        {
            "item": code,
            "title": title,
            "schedule": frequency,
            "department": department,
            "source_system": source.code,
            "access": source.access,
            "format": source.format,
        }
        for code, title, frequency, department, source in session.execute(statement)
    ]


def is_pulled(status: str) -> bool:
    return status in PIPELINE_STATUSES


def write_manifest(location: ManifestLocation, entries: list[dict[str, Any]]) -> ManifestLocation:
    """Written whole (one PUT on object storage; locally, renamed into place), so a DAG parse never reads half."""
    if storage.is_url(location):
        body = json.dumps({"pipelines": entries}, ensure_ascii=False, indent=2).encode("utf-8")
        storage.put_whole(str(location), body)
        return location
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".pipelines-", delete=False, encoding="utf-8") as out:
        json.dump({"pipelines": entries}, out, ensure_ascii=False, indent=2)
    os.chmod(out.name, 0o644)  # NamedTemporaryFile makes it 600: the DAG processor may run as another user
    os.replace(out.name, path)
    return path


def follow_catalog(engine: Engine, manifest: ManifestLocation) -> Engine:
    """Keep ``manifest`` in step with the catalog behind ``engine``, from every session bound to it."""
    engine.update_execution_options(**{MANIFEST_OPTION: str(manifest)})
    return engine


def rewrite_after_commit(session: Session) -> None:
    """The session changes what must be pulled (or its caller wants the manifest written whole after it commits)."""
    session.info[REWRITE_PENDING] = True


def refresh_manifest(engine: Engine, manifest: ManifestLocation) -> ManifestLocation:
    """Rebuild the manifest from the committed catalog and replace it. The read and the write happen under a lock,
    so of two processes rewriting at once the one that writes last also read last: never a stale file. (A file lock
    beside a local manifest; for one on object storage, which processes on several hosts write, a PostgreSQL
    advisory lock, or with SQLite, whose processes share a host, a file lock in the temporary folder.)"""
    with _manifest_lock(engine, manifest):
        reader = engine.execution_options(**{READ_ONLY: True})
        with session_scope(reader) as session:
            entries = build_manifest(session)
        return write_manifest(manifest, entries)


def lock_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".lock")


@contextmanager
def _manifest_lock(engine: Engine, manifest: ManifestLocation) -> Iterator[None]:
    if not storage.is_url(manifest):
        with locked(lock_path(Path(manifest))):
            yield
    elif engine.dialect.name == "postgresql":
        with advisory_locked(engine, SHARED_MANIFEST_LOCK):
            yield
    else:
        digest = hashlib.sha256(str(manifest).encode()).hexdigest()[:16]
        with locked(Path(tempfile.gettempdir()) / f"datashare-manifest-{digest}.lock"):
            yield


@contextmanager
def advisory_locked(engine: Engine, key: int) -> Iterator[None]:
    """A PostgreSQL session-level advisory lock, held on a connection of its own until the block ends."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads: each takes its own open file)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@event.listens_for(Session, "after_commit")
def _rewrite_once_committed(session: Session) -> None:
    if not session.info.pop(REWRITE_PENDING, False):
        return
    bind = session.get_bind()
    manifest = bind.get_execution_options().get(MANIFEST_OPTION)
    if manifest is None:
        log.debug("catalog change committed on an engine bound to no pipeline manifest")
        return
    try:
        refresh_manifest(bind.engine, manifest if storage.is_url(manifest) else Path(manifest))
    except Exception:  # the change is committed: it stands, and the next rewrite brings the manifest up to date
        log.exception("PIPELINE MANIFEST NOT REWRITTEN: %s no longer matches the committed catalog until the next "
                      "catalog change or `datashare catalog import`", manifest)  # fmt: skip


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_change(session: Session) -> None:
    session.info.pop(REWRITE_PENDING, None)
