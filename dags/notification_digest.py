"""Once a day, the data officers' digest of the previous day's detection proposals (counts per item, never a
value): a notification for every data officer, sent by the outbox like any other (dags/deliver_notifications.py).
Made once per day, and only when detection proposed anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def make_digest() -> dict[str, Any]:
    from catalog.db import make_engine, session_scope, utcnow
    from catalog.notifications.notices import detection_digest
    from catalog.settings import get_settings

    day = utcnow().date() - timedelta(days=1)
    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            made = detection_digest(session, day)
    finally:
        engine.dispose()
    return {"day": day.isoformat(), "digest": made is not None}


with DAG(
    dag_id="notification_digest",
    schedule="0 1 * * *",  # 01:00 UTC (09:00 in China): the previous UTC day's proposals
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["datashare", "notifications"],
    doc_md="The data officers' daily digest of the previous day's detection proposals (sent by the outbox).",
):
    PythonOperator(task_id="digest", python_callable=make_digest)
