"""Ingestion pipelines: one DAG per published catalog item with a source system.

Each run is one task: it pulls the item's newest export, keeps it raw, checks it with Great Expectations and
either publishes a new version (the task succeeds and the item's Airflow Asset is updated) or quarantines
the batch (the task fails, so ops see it); an export already ingested, or none yet, skips the task and
leaves the Asset alone. One task per DAG also keeps parsing 1,000 items cheap.

The DAGs come from ``<DATASHARE_DATA_DIR>/pipelines.json``, which the ``datashare`` commands rewrite
whenever the catalog changes: parsing this file reads one small JSON file and imports nothing heavy (no
database, no network, no pandas or Great Expectations).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

MANIFEST = Path(os.environ.get("DATASHARE_DATA_DIR", "data")).resolve() / "pipelines.json"
DEFAULT_ARGS = {"owner": "datashare", "retries": 2, "retry_delay": timedelta(minutes=5)}


def item_asset(item_code: str) -> Asset:
    return Asset(name=f"datashare.item.{item_code}", uri=f"datashare://items/{item_code}")


def dag_id_for(item_code: str) -> str:
    return "ingest_" + item_code.lower().replace("-", "_")


def pipelines() -> list[dict[str, Any]]:
    try:
        return list(json.loads(MANIFEST.read_text(encoding="utf-8"))["pipelines"])
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as error:  # a damaged manifest: say so, but load no half DAGs
        raise RuntimeError(f"{MANIFEST} is not a pipeline manifest ({error}); rerun a datashare command") from None


def pull_and_ingest(item_code: str) -> dict[str, Any]:
    """Pull the newest export and run the ingestion path (the same code as `datashare pull`)."""
    from catalog.db import make_engine
    from catalog.ingest.runner import pull_and_ingest as run
    from catalog.settings import get_settings

    context = get_current_context()
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        outcome = run(engine, settings, item_code, trigger=f"airflow:{context['dag'].dag_id}/{context['run_id']}")
    finally:
        engine.dispose()
    if outcome is None:
        raise AirflowSkipException(f"no export in {item_code}'s drop folder yet")
    if outcome.outcome == "quarantined":  # recorded and committed; retrying would change nothing
        raise AirflowFailException(f"batch {outcome.batch_id} quarantined: " + "; ".join(outcome.reasons))
    if outcome.outcome == "duplicate":  # nothing new: skipping leaves the Asset without an event
        raise AirflowSkipException("; ".join(outcome.reasons))
    return outcome.as_dict()


def build(entry: dict[str, Any]) -> DAG:
    code = entry["item"]
    # A classic operator in a `with DAG` block: a third cheaper to parse than the TaskFlow decorators.
    with DAG(
        dag_id=dag_id_for(code),
        schedule=entry["schedule"],
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["datashare", "ingest", entry["department"], entry["access"]],
        doc_md=f"Pulls **{entry['title']}** ({code}) from {entry['department']}/{entry['source_system']} "
        f"({entry['format']}), validates it and publishes a new version or quarantines the batch.",
    ) as pipeline:
        PythonOperator(task_id="ingest", python_callable=pull_and_ingest, op_args=[code], outlets=[item_asset(code)])
    return pipeline


for _entry in pipelines():
    build(_entry)
