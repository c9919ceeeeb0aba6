"""Notifications leave the platform here, never inside a request or an ingestion: every minute this tells the
consumers of subscriptions that end within a week (once each), then sends the due deliveries of the outbox (mail,
webhooks), retrying failed ones at doubling intervals and giving up after the last attempt (catalog/notifications/
outbox.py). Several runs at once share the work safely; failures are visible to ops (``datashare notifications
deliveries --failed``, ``GET /notifications/deliveries?failed=true``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

BATCH = 50  # deliveries per run (one run a minute)


def notice_expiring_subscriptions() -> dict[str, Any]:
    from catalog.db import make_engine, session_scope
    from catalog.notifications.notices import subscriptions_expiring
    from catalog.settings import get_settings

    engine = make_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            noticed = subscriptions_expiring(session)
    finally:
        engine.dispose()
    return {"expiring_noticed": noticed}


def deliver() -> dict[str, Any]:
    from catalog.db import make_engine
    from catalog.notifications.outbox import deliver_pending
    from catalog.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        return deliver_pending(engine, settings, limit=BATCH).as_dict()
    finally:
        engine.dispose()


with DAG(
    dag_id="deliver_notifications",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["datashare", "notifications"],
    doc_md="Notices of subscriptions ending within a week, then the outbox's due deliveries (mail, webhooks).",
):
    expiring = PythonOperator(task_id="notice_expiring", python_callable=notice_expiring_subscriptions)
    # Sending waits on nothing: a failed notice of expiring subscriptions holds back no delivery.
    sending = PythonOperator(
        task_id="deliver", python_callable=deliver, execution_timeout=timedelta(minutes=9), trigger_rule="all_done"
    )
    expiring >> sending
