"""Pull an item's newest export from its source system and run the ingestion path: the body of each
pipeline task, callable outside Airflow too (``datashare pull``)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from catalog.db import session_scope
from catalog.departments.models import SourceSystem
from catalog.errors import DomainError
from catalog.ingest.connectors import FetchedExport, fetch_pages, newest_file, query_database
from catalog.ingest.service import IngestOutcome, ingest_export
from catalog.items.models import CatalogItem
from catalog.settings import Settings


class NoSourceSystem(DomainError):
    code = "no_source_system"


def fetch_newest_export(engine: Engine, settings: Settings, item_code: str) -> FetchedExport | None:
    with session_scope(engine) as session:
        source = session.scalar(
            select(SourceSystem)
            .join(CatalogItem, CatalogItem.source_system_id == SourceSystem.id)
            .where(CatalogItem.code == item_code)
        )
        if source is None:
            raise NoSourceSystem(f"catalog item {item_code} has no source system to pull from")
        access, location, pattern, query = source.access, source.location, source.file_pattern, source.query
    if access == "sql" and query:
        return query_database(location, query)
    if access == "http":
        return fetch_pages(location)
    return newest_file(location, pattern, settings.resolved_data_dir)


def pull_and_ingest(engine: Engine, settings: Settings, item_code: str, trigger: str) -> IngestOutcome | None:
    """Ingest the newest export (None when the drop folder is empty). A quarantine is committed too."""
    export = fetch_newest_export(engine, settings, item_code)
    if export is None:
        return None
    with session_scope(engine) as session:
        return ingest_export(
            session, item_code, export.data, export.name, raw_dir=settings.resolved_data_dir / "raw", trigger=trigger
        )
