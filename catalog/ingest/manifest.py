"""The pipeline manifest: what the DAG file needs to know about each item, so that parsing DAGs never touches the
database (DESIGN.md: cheap DAG parsing).

The manifest follows the catalog whatever the entry point (API, command line, an import): a catalog service that
changes what must be pulled marks its session (``rewrite_after_commit``), and after that session's commit, never
before it, the manifest is rebuilt from the committed catalog and replaced whole. A rolled-back change rewrites
nothing. Where the manifest lives is bound to the engine (``follow_catalog``), so an API built with its own
settings writes into its own data folder; an engine bound to none (a test's, a script's) rewrites nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.db import READ_ONLY, session_scope
from catalog.departments.models import Department, SourceSystem
from catalog.items.models import CatalogItem

PIPELINE_STATUSES = ("published",)
# What an item's manifest entry carries of its declaration (its department's and source system's codes included).
MANIFEST_ATTRIBUTES = ("title", "update_frequency", "department", "source_system")
MANIFEST_OPTION = "datashare_pipeline_manifest"  # engine execution option: where this catalog's manifest lives
REWRITE_PENDING = "datashare_pipelines_changed"  # session.info key: rewrite the manifest after the commit
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


def write_manifest(path: Path, entries: list[dict[str, Any]]) -> Path:
    """Written whole and renamed into place, so a DAG parse never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".pipelines-", delete=False, encoding="utf-8") as out:
        json.dump({"pipelines": entries}, out, ensure_ascii=False, indent=2)
    os.chmod(out.name, 0o644)  # NamedTemporaryFile makes it 600: the DAG processor may run as another user
    os.replace(out.name, path)
    return path


def follow_catalog(engine: Engine, manifest: Path) -> Engine:
    """Keep ``manifest`` in step with the catalog behind ``engine``, from every session bound to it."""
    engine.update_execution_options(**{MANIFEST_OPTION: str(manifest)})
    return engine


def rewrite_after_commit(session: Session) -> None:
    """The session changes what must be pulled (or its caller wants the manifest written whole after it commits)."""
    session.info[REWRITE_PENDING] = True


def refresh_manifest(engine: Engine, manifest: Path) -> Path:
    """Rebuild the manifest from the committed catalog and replace it. The read and the write happen under a file
    lock, so of two processes rewriting at once the one that writes last also read last: never a stale file."""
    with locked(lock_path(manifest)):
        reader = engine.execution_options(**{READ_ONLY: True})
        with session_scope(reader) as session:
            entries = build_manifest(session)
        return write_manifest(manifest, entries)


def lock_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".lock")


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
        refresh_manifest(bind.engine, Path(manifest))
    except Exception:  # the change is committed: it stands, and the next rewrite brings the manifest up to date
        log.exception("PIPELINE MANIFEST NOT REWRITTEN: %s no longer matches the committed catalog until the next "
                      "catalog change or `datashare catalog import`", manifest)  # fmt: skip


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_change(session: Session) -> None:
    session.info.pop(REWRITE_PENDING, None)
