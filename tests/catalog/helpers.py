"""Test data built from the demo catalog, the realistic declarations every test starts from."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.classification import review
from catalog.cli import DEMO_CATALOG
from catalog.declarations.schemas import CatalogFile
from catalog.declarations.service import import_catalog, parse_catalog_text
from catalog.departments.models import Department, SourceSystem
from catalog.ingest.conform import RowError, conform
from catalog.ingest.tables import RawTable
from catalog.items.models import CatalogItem, ItemChange, ItemField, ItemTag
from catalog.items.schemas import FieldDeclaration

DEMO_TEXT = DEMO_CATALOG.read_text(encoding="utf-8")


def demo_raw() -> dict[str, Any]:
    """The demo catalog as plain data, to be changed by a test."""
    return copy.deepcopy(yaml.safe_load(DEMO_TEXT))


def demo_file() -> CatalogFile:
    return parse_catalog_text(DEMO_TEXT)


OFFICER = Principal("user:officer-li", "sjj")  # a data officer


def import_demo(session: Session) -> None:
    """The demo catalog as a data officer imports it: its published items' fields approved as declared."""
    import_catalog(session, demo_file(), actor=OFFICER, by_officer=True)


def import_demo_unreviewed(session: Session) -> None:
    """The demo catalog as a steward's import leaves it: every item a draft, every field awaiting review."""
    catalog = demo_file()
    drafts = [item.model_copy(update={"status": None}) for item in catalog.items]
    import_catalog(session, catalog.model_copy(update={"items": drafts}), actor="test")


def raw_item(raw: dict[str, Any], code: str) -> dict[str, Any]:
    return next(item for item in raw["items"] if item["code"] == code)


def raw_field(raw: dict[str, Any], code: str, name: str) -> dict[str, Any]:
    return next(field for field in raw_item(raw, code)["fields"] if field["name"] == name)


def table_counts(session: Session) -> dict[str, int]:
    models = (Department, SourceSystem, CatalogItem, ItemField, ItemTag, ItemChange)
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0 for model in models}


def write_yaml(folder: Path, raw: dict[str, Any], name: str = "catalog.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def pull_complaints_from(source: dict[str, Any], database_url: str, tmp_path: Path) -> Any:
    """Declare the complaints item with this source system on a fresh database, then pull it once."""
    from catalog.db import make_engine, session_scope
    from catalog.declarations.service import import_catalog_file
    from catalog.ingest.runner import pull_and_ingest
    from catalog.settings import Settings

    raw = demo_raw()
    raw["departments"][2]["source_systems"] = [{"code": "complaints", "name": "民生诉求综合服务系统", **source}]
    raw["items"] = [raw_item(raw, "ZSJ-MS-0001")]
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            import_catalog_file(session, write_yaml(tmp_path, raw), actor=OFFICER, by_officer=True)
        settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
        return pull_and_ingest(engine, settings, "ZSJ-MS-0001", trigger="test")
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Conformed:
    """A whole export conformed at once (small test exports): values by row number and field name."""

    frame: pd.DataFrame
    errors: list[RowError]

    @property
    def rows_read(self) -> int:
        return len(self.frame)

    @property
    def rejected_rows(self) -> set[int]:
        return {error.row for error in self.errors}


def conform_whole(table: RawTable, fields: Sequence[FieldDeclaration]) -> Conformed:
    chunks = list(conform(table, fields))
    if not chunks:
        return Conformed(pd.DataFrame(columns=[field.name for field in fields]), [])
    frame = pa.concat_tables([chunk.table for chunk in chunks]).to_pandas()
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return Conformed(frame, [error for chunk in chunks for error in chunk.errors])


def approve_every_field(session: Session, code: str, officer: Principal = OFFICER) -> None:
    """A data officer approves every field of the item as declared."""
    names = session.scalars(
        select(ItemField.name).join(CatalogItem, CatalogItem.id == ItemField.item_id).where(CatalogItem.code == code)
    )
    review.decide(session, [review.FieldDecision(item=code, field=name) for name in names], officer)
