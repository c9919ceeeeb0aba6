"""Ingestion pipelines: one DAG per published catalog item with a source system.

Each run is one task: it pulls the item's newest export, keeps it raw, checks it with Great Expectations and
either publishes a new version (the task succeeds and the item's Airflow Asset is updated) or quarantines
the batch (the task fails, so ops see it, and fails again while the export waits in quarantine); an export
already ingested and settled, or none yet, skips the task and leaves the Asset alone. An unexpected error (the
database, the disk, a bug) fails the task with its traceback logged without values, and Airflow retries it within
seconds. One task per DAG also keeps parsing 1,000 items cheap.

The DAGs come from the pipeline manifest, ``<data dir>/pipelines.json``, which the catalog rewrites after every
commit that changes what must be pulled, through the API or the ``datashare`` commands alike
(catalog/ingest/manifest.py). The data folder comes from the platform's settings, as everywhere else: the environment
(``DATASHARE_DATA_DIR``), then the env file (``DATASHARE_ENV_FILE``, else ``.env`` in the working directory of the
Airflow process). Parsing this file reads one small JSON file and imports nothing heavy (no database, no network,
no pandas or Great Expectations; of the platform, only its settings).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from catalog.settings import get_settings

MANIFEST = get_settings().pipeline_manifest
log = logging.getLogger(__name__)
# An infrastructure error (the database, Airflow's api-server still starting) is retried within seconds, then less
# and less often: 10 s doubling per try up to 5 minutes (Airflow waits between that delay and twice it).
DEFAULT_ARGS = {
    "owner": "datashare",
    "retries": 6,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
}


class IngestFailed(Exception):
    """An unexpected error, its traceback logged without values (catalog.logsafe): the task fails and is retried."""


def item_asset(item_code: str) -> Asset:
    return Asset(name=f"datashare.item.{item_code}", uri=f"datashare://items/{item_code}")


def dag_id_for(item_code: str) -> str:
    return "ingest_" + item_code.lower().replace("-", "_")


def pipelines() -> list[dict[str, Any]]:
    try:
        return list(json.loads(MANIFEST.read_text(encoding="utf-8"))["pipelines"])
    except FileNotFoundError:
        log.error(
            "NO INGESTION PIPELINES: the pipeline manifest %s does not exist. It is written after every catalog change "
            "that concerns the pipelines; `datashare catalog import <file>` (or `./dev run`) writes it at once. Is "
            "DATASHARE_DATA_DIR (or DATASHARE_ENV_FILE) set for this Airflow process as for the catalog's?",
            MANIFEST,
        )
        return []
    except (ValueError, KeyError, TypeError) as error:  # a damaged manifest: say so, but load no half DAGs
        raise RuntimeError(f"{MANIFEST} is not a pipeline manifest ({error}); rerun a datashare command") from None


def pull_and_ingest(item_code: str) -> dict[str, Any]:
    """Pull the newest export and run the ingestion path (the same code as `datashare pull`).

    A refusal (the item is not published, has no source system ...) and a quarantine fail the task without
    retries: retrying would change nothing. An unexpected error (database, disk, a bug) propagates, so Airflow
    retries the task; the failed run settles nothing and the retry ingests the export again."""
    from catalog import logsafe
    from catalog.db import make_engine
    from catalog.errors import DomainError
    from catalog.ingest.runner import pull_and_ingest as run
    from catalog.ingest.service import IngestInProgress

    context = get_current_context()
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        outcome = run(engine, settings, item_code, trigger=f"airflow:{context['dag'].dag_id}/{context['run_id']}")
    except IngestInProgress:
        raise  # another run of the item is going: a retry later finds it done
    except DomainError as error:
        raise AirflowFailException(error.message) from None
    except Exception as error:  # Airflow would log it as it is: logged here without values, then retried
        logsafe.log_failure(log, error, "ingesting %s failed; Airflow retries the task", item_code)
        raise IngestFailed(f"ingesting {item_code} failed: {logsafe.redacted_message(error)}") from None
    finally:
        engine.dispose()
    if outcome is None:
        raise AirflowSkipException(f"no export in {item_code}'s drop folder yet")
    if outcome.awaits_operator:  # recorded and committed; retrying would change nothing
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
