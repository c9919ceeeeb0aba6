"""Pull an item's newest export from its source system and run the ingestion path: the body of each
pipeline task, callable outside Airflow too (``datashare pull``)."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import Engine, select

from catalog.db import session_scope
from catalog.departments.models import Department, SourceSystem
from catalog.errors import DomainError
from catalog.ingest.connectors import FetchedExport, fetch_pages, http_token_variable, newest_file, query_database
from catalog.ingest.service import IngestOutcome, run_ingest
from catalog.ingest.source_safety import department_drop_area, platform_stores
from catalog.ingest.third_party import quiet_third_party_logging
from catalog.items.models import CatalogItem
from catalog.ops import feeds
from catalog.settings import Settings


class NoSourceSystem(DomainError):
    code = "no_source_system"


def fetch_newest_export(engine: Engine, settings: Settings, item_code: str) -> FetchedExport | None:
    with session_scope(engine) as session:
        found = session.execute(
            select(SourceSystem, Department.code)
            .join(CatalogItem, CatalogItem.source_system_id == SourceSystem.id)
            .join(Department, SourceSystem.department_id == Department.id)
            .where(CatalogItem.code == item_code)
        ).first()
        if found is None:
            raise NoSourceSystem(f"catalog item {item_code} has no source system to pull from")
        source, department = found
        access, location, pattern, query = source.access, source.location, source.file_pattern, source.query
        token_variable = http_token_variable(department, source.code)
    if access == "sql" and query:
        return query_database(location, query)
    if access == "http":
        token = os.environ.get(token_variable)
        return fetch_pages(location, allowed_hosts=settings.source_allowed_hosts, token=token)
    # A department's sources read its own part of the drop area only: never another department's exports.
    return newest_file(location, pattern, *department_drop_area(settings, department), platform_stores(settings))


def pull_and_ingest(engine: Engine, settings: Settings, item_code: str, trigger: str) -> IngestOutcome | None:
    """Ingest the newest export (None when the drop folder is empty): the run's record commits before its work, a
    quarantine is committed too, and an unexpected error is recorded as a failed run and raised."""
    quiet_third_party_logging()
    export = fetch_newest_export(engine, settings, item_code)
    if export is None:
        with session_scope(engine) as session:
            feeds.record(session, item_code, feeds.NO_EXPORT)  # checked: the department sent nothing
        return None
    data_dir = settings.resolved_data_dir
    return run_ingest(
        engine, item_code, export, export.name, raw_dir=settings.raw_store, reports_dir=data_dir / "reports",
        trigger=trigger, stale_after=timedelta(hours=settings.ingest_run_timeout_hours),
    )  # fmt: skip
