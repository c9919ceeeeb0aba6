"""Releases made outside Airflow reach downstream DAGs too: every minute, each quarantined batch released through the
API or ``datashare quarantine release`` since the last run is announced as its item's Asset event (version, rows and
batch, as an ingestion run announces a version it publishes), once. A release decided in Airflow's required action is
announced by that task itself. With nothing to announce the run is skipped."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from catalog.ingest.assets import RELEASES, item_asset

log = logging.getLogger(__name__)


def announce() -> dict[str, Any]:
    from catalog.db import make_engine, session_scope
    from catalog.ingest.task import mark_announced, pending_announcements
    from catalog.settings import get_settings

    events = get_current_context()["outlet_events"][RELEASES]
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            releases = pending_announcements(session)
            for release in releases:
                events.add(item_asset(release.item), extra=release.asset_extra)
                log.info("ANNOUNCED %s", release.summary)
            mark_announced(session, [release.batch for release in releases if release.batch is not None])
    finally:
        engine.dispose()
    if not releases:
        raise AirflowSkipException("no release to announce")
    return {"announced": [release.as_dict() for release in releases]}


with DAG(
    dag_id="announce_releases",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 2, "retry_delay": timedelta(seconds=20)},
    tags=["datashare", "ingest"],
    doc_md="Announces releases of quarantined batches made through the API or the command line as their items' "
    "Asset events.",
):
    PythonOperator(task_id="announce", python_callable=announce, outlets=[RELEASES])
