"""Push delivery: one DAG per item with a pipeline, scheduled on the item's Asset, so it runs as soon as a version is
published (by its ingestion run, a release in Airflow or one announced by ``announce_releases``).

Each run sends the current version to every target of the item's active, unpaused read subscriptions that lacks it
(catalog/push/service.py): a webhook notice, a table in the consumer's PostgreSQL database, a file drop. A run with a
failed target fails after the others are done, and Airflow tries again (10 s, doubling, 5 times): targets already
delivered are not sent twice. Failures are also on the delivery records (``GET /deliveries?status=failed``,
``datashare deliveries list --failed``) and told to ops and the consumer's stewards once. Triggering the DAG by hand
sends what is due (a resumed subscription, a new target). Parsing this file reads the pipeline manifest only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context

from catalog.ingest.assets import item_asset, read_pipelines
from catalog.settings import get_settings

log = logging.getLogger(__name__)
DEFAULT_ARGS = {
    "owner": "datashare",
    "retries": 5,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
}


class DeliveriesFailed(Exception):
    """Some target did not get the version: Airflow tries again."""


def dag_id_for(item_code: str) -> str:
    return "deliver_" + item_code.lower().replace("-", "_")


def deliver(item_code: str) -> dict[str, Any]:
    from catalog.db import make_engine
    from catalog.ingest.third_party import quiet_third_party_logging
    from catalog.push.service import deliver_item
    from catalog.storage import using_connection

    quiet_third_party_logging()
    context = get_current_context()
    trigger = f"airflow:{context['dag'].dag_id}/{context['run_id']}"
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with using_connection(settings.object_store_conn_id):  # file drops on object storage: its credentials
            report = deliver_item(engine, settings, item_code, trigger)
    finally:
        engine.dispose()
    log.info("%s", report.summary)
    for line in report.delivered:
        log.info("  delivered %s", line)
    for line in report.failed:
        log.error("  FAILED %s", line)
    if report.failed:
        raise DeliveriesFailed(f"{len(report.failed)} target(s) of {item_code} failed; Airflow tries again")
    return report.as_dict()


def build(entry: dict[str, Any]) -> DAG:
    code = entry["item"]
    with DAG(
        dag_id=dag_id_for(code),
        schedule=[item_asset(code)],
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["datashare", "delivery", entry["department"]],
        doc_md=f"Sends each new version of **{entry['title']}** ({code}) to its subscribers' delivery targets "
        "(webhooks, their own PostgreSQL tables, file drops).",
    ) as pipeline:
        PythonOperator(task_id="deliver", python_callable=deliver, op_args=[code])
    return pipeline


for _entry in read_pipelines(get_settings().pipeline_manifest_location):
    build(_entry)
