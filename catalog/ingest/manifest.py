"""The pipeline manifest: what the DAG file needs to know about each item, written by the catalog's edges
so that parsing DAGs never touches the database (DESIGN.md: cheap DAG parsing)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.departments.models import Department, SourceSystem
from catalog.items.models import CatalogItem

MANIFEST_NAME = "pipelines.json"
PIPELINE_STATUSES = ("published",)


def manifest_path(data_dir: Path) -> Path:
    return data_dir / MANIFEST_NAME


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


def write_manifest(data_dir: Path, entries: list[dict[str, Any]]) -> Path:
    """Written whole and renamed into place, so a DAG parse never reads half a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = manifest_path(data_dir)
    with tempfile.NamedTemporaryFile("w", dir=data_dir, delete=False, encoding="utf-8") as handle:
        json.dump({"pipelines": entries}, handle, ensure_ascii=False, indent=2)
    os.replace(handle.name, path)
    return path
