"""Subscriptions end on time without anyone calling the API: every five minutes this marks the active
subscriptions whose period is over as expired, with an audit record each. (Data reads check the end of the
period themselves, to the second; this keeps the recorded state and the audit trail in step.) It also prunes
the access change log past a day: an API process that far behind forgets everything it remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

CHANGE_LOG_KEPT = timedelta(days=1)


def expire_subscriptions() -> dict[str, Any]:
    from catalog.access.changes import prune_changes
    from catalog.db import make_engine, session_scope, utcnow
    from catalog.settings import get_settings
    from catalog.subscriptions.service import expire_due

    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            expired = expire_due(session)
            pruned = prune_changes(session, before=utcnow() - CHANGE_LOG_KEPT)
    finally:
        engine.dispose()
    return {"expired": expired, "pruned_changes": pruned}


with DAG(
    dag_id="expire_subscriptions",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["datashare", "subscriptions"],
    doc_md="Marks active subscriptions whose period has ended as expired, and audits each.",
):
    PythonOperator(task_id="expire", python_callable=expire_subscriptions)
