"""Every five minutes the freshness of every pulled item is assessed (catalog/ops/freshness.py): an item whose
export is late, overdue or was never received is told to its department's stewards and to ops once per status in
each lateness episode (catalog/notifications), whether or not its own pipeline ran. The log's first line gives the
platform-wide counts. The platform's view and the notices do not depend on this DAG's runs: it only sends them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

log = logging.getLogger(__name__)


def watch() -> dict[str, Any]:
    from catalog.db import make_engine, session_scope
    from catalog.notifications.notices import item_late
    from catalog.ops.freshness import record_transitions, summary
    from catalog.settings import get_settings

    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            entered = record_transitions(session)
            notified = [feed.item for feed in entered if item_late(session, feed)]
            overall = summary(session).overall
    finally:
        engine.dispose()
    log.info("FRESHNESS of %d pulled item(s): %d on time, %d late, %d overdue, %d never received; %d newly behind, "
             "notified", overall.total, overall.on_time, overall.late, overall.overdue, overall.never_received,
             len(notified))  # fmt: skip
    for feed in entered:
        log.info("  %s (%s) is %s: an export was due %s", feed.item, feed.department, feed.status.value,
                 f"{feed.due_at:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    return {"total": overall.total, "behind": overall.behind, "notified": notified}


with DAG(
    dag_id="watch_freshness",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["datashare", "ops"],
    doc_md="Assesses every pulled item's freshness and tells stewards and ops about items that fell behind.",
):
    PythonOperator(task_id="watch", python_callable=watch)
