"""Ingestion pipelines: one DAG per published catalog item with a source system.

Each run pulls the item's newest export, keeps it raw, checks it with Great Expectations and publishes a new version
(the item's Airflow Asset gets an event with the version, row count and batch) or quarantines the batch: then the run
raises a required action in Airflow's UI (human in the loop; the waiting task holds no worker slot) with the quality
report, to release the batch (published as the next version, with its Asset event) or discard it, with a reason; the
same code path, permission and audit as the API and the ``datashare quarantine`` commands. Without a decision within
``DATASHARE_QUARANTINE_DECISION_HOURS`` the batch stays quarantined and the run fails.

With no new export (none yet, or the same again) the run is skipped while none is due; once one is due by the item's
update frequency the task looks again every five minutes (rescheduled, holding no worker slot) through the grace
period, and FAILS when the export is late (catalog/ops/freshness.py): a department that sends nothing never shows
green. Each task's log starts with one line saying what happened. An unexpected error (the database, the disk, a bug)
fails the task with its traceback logged without values, and Airflow retries it within seconds.

The DAGs come from the pipeline manifest, ``<data dir>/pipelines.json`` (or the object ``DATASHARE_MANIFEST_URL``
names, when the dag-processor runs on another machine), which the catalog rewrites after every commit that changes
what must be pulled, through the API or the ``datashare`` commands alike (catalog/ingest/manifest.py). The data
folder comes from the platform's settings, as everywhere else: the environment (``DATASHARE_DATA_DIR``), then the env
file (``DATASHARE_ENV_FILE``, else ``.env`` in the working directory of the Airflow process). Parsing this file reads
one small JSON file (on object storage: one small GET) and imports nothing heavy (no database, no pandas or Great
Expectations; of the platform, only its settings).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSkipException

from catalog.ingest.assets import item_asset, read_pipelines, versions_alias
from catalog.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from catalog.ingest.task import TaskReport

MANIFEST = get_settings().pipeline_manifest_location
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


RELEASE, DISCARD = "Release", "Discard"  # the options of a quarantined batch's required action


class IngestFailed(Exception):
    """An unexpected error, its traceback logged without values (catalog.logsafe): the task fails and is retried."""


def dag_id_for(item_code: str) -> str:
    return "ingest_" + item_code.lower().replace("-", "_")


def pipelines() -> list[dict[str, Any]]:
    return read_pipelines(MANIFEST)


@contextmanager
def _platform() -> Iterator[tuple[Engine, Settings]]:
    """The catalog's engine and settings for a task, with third-party loggers quiet (the log is the platform's)."""
    from catalog.db import make_engine
    from catalog.ingest.third_party import quiet_third_party_logging
    from catalog.storage import using_connection

    quiet_third_party_logging()
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with using_connection(settings.object_store_conn_id):  # object storage's credentials, if in a connection
            yield engine, settings
    finally:
        engine.dispose()


def _reported(report: TaskReport) -> dict[str, Any]:
    """Log what happened (first line) and its details; announce a published version as the item's Asset event."""
    log.info("%s", report.summary)
    for line in report.details:
        log.info("  %s", line)
    if report.publishes:
        get_current_context()["outlet_events"][versions_alias(report.item)].add(
            item_asset(report.item), extra=report.asset_extra
        )
    return report.as_dict()


def pull_and_ingest(item_code: str) -> dict[str, Any]:
    """Pull the newest export and run the ingestion path (the same code as `datashare pull`).

    A refusal (the item is not published, has no source system ...), a late export and an export still waiting for a
    decision fail the task without retries: retrying would change nothing. An unexpected error (database, disk, a
    bug) propagates, so Airflow retries the task; the failed run settles nothing and the retry ingests the export
    again."""
    from catalog.ingest.third_party import loading_for_good

    with loading_for_good():  # the task's process loads the platform once
        from catalog import logsafe
        from catalog.errors import DomainError
        from catalog.ingest.service import IngestInProgress
        from catalog.ingest.task import ingest_newest

    with _platform() as (engine, settings):
        try:
            report = ingest_newest(engine, settings, item_code, _trigger(get_current_context()))
        except IngestInProgress:
            raise  # another run of the item is going: a retry later finds it done
        except DomainError as error:
            log.error("REFUSED %s: %s", item_code, error.message)
            raise AirflowFailException(error.message) from None
        except Exception as error:  # Airflow would log it as it is: logged here without values, then retried
            logsafe.log_failure(log, error, "FAILED ingesting %s; Airflow retries the task", item_code)
            raise IngestFailed(f"ingesting {item_code} failed: {logsafe.redacted_message(error)}") from None
    result = _reported(report)
    if report.outcome in ("late", "awaits_decision"):
        raise AirflowFailException(report.summary)
    if report.outcome == "waiting":  # the worker slot is freed until then
        raise AirflowRescheduleException(report.recheck_at)
    if report.outcome == "nothing_new":  # skipping leaves the Asset without an event
        raise AirflowSkipException(report.summary)
    return result


def _trigger(context: Any) -> str:
    """Who ran an ingestion, as its run record says: this DAG run."""
    return f"airflow:{context['dag'].dag_id}/{context['run_id']}"


class QuarantineDecision(HITLOperator):
    """The required action for a batch the run quarantined: Release or Discard, with a reason. Skipped when the run
    quarantined nothing. Only the Airflow users named in ``DATASHARE_QUARANTINE_DECIDERS`` may answer it, and the
    platform applies the decision as the platform user of that name, who must be allowed to operate runs for the
    item's department (the same check as the API's). The batch is the one this run's record names, never one passed
    on through XCom."""

    def __init__(self, *, item_code: str, **kwargs: Any) -> None:
        super().__init__(
            subject=f"Quarantined batch of {item_code}",
            options=[RELEASE, DISCARD],
            retries=0,  # a retry would ask again; without a decision the batch stays quarantined
            # Optional for Airflow (a required param would need a valid default), required by the platform: a blank
            # reason fails the task and the batch stays quarantined.
            params={"reason": Param(None, type=["null", "string"], minLength=3, maxLength=1000,
                                    description="Why: recorded with the decision and audited.")},
            response_timeout=timedelta(hours=get_settings().quarantine_decision_hours),
            assigned_users=[{"id": name, "name": name} for name in get_settings().quarantine_deciders],
            outlets=[versions_alias(item_code)],
            **kwargs,
        )  # fmt: skip
        self.item_code = item_code

    def execute(self, context: Any) -> Any:
        from catalog.ingest.task import decision_request, run_batch, still_quarantined

        with _platform() as (engine, settings):
            batch_id = run_batch(engine, self.item_code, _trigger(context))
            if batch_id is None or not still_quarantined(engine, batch_id):
                raise AirflowSkipException("this run quarantined nothing: no decision to ask for")
            self.subject, self.body = decision_request(engine, settings, batch_id)
        log.info("AWAITING A DECISION on %s batch %s: Release or Discard under Required actions", self.item_code,
                 batch_id)  # fmt: skip
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from catalog.errors import DomainError
        from catalog.ingest.task import apply_decision

        response = super().execute_complete(context, event)
        choice, reason = response["chosen_options"][0], str(response["params_input"].get("reason") or "").strip()
        username = (response.get("responded_by_user") or {}).get("name", "")
        with _platform() as (engine, _):
            try:
                report = apply_decision(engine, self.item_code, _trigger(context), choice == RELEASE, reason, username)
            except DomainError as error:
                log.error("REFUSED the decision of %s on %s: %s; the batch stays quarantined", username,
                          self.item_code, error.message)  # fmt: skip
                raise AirflowFailException(error.message) from None
        return _reported(report)

    def process_trigger_event_error(self, event: dict[str, Any]) -> None:
        from catalog.ingest.task import run_batch, still_quarantined

        if event.get("error_type") == "timeout":
            with _platform() as (engine, _):
                batch_id = run_batch(engine, self.item_code, _trigger(get_current_context()))
                waiting = batch_id is not None and still_quarantined(engine, batch_id)
            if not waiting:
                raise AirflowSkipException(f"NO DECISION HERE on batch {batch_id}: it was decided elsewhere")
            hours = get_settings().quarantine_decision_hours
            raise AirflowFailException(f"NO DECISION on batch {batch_id} within {hours:g} h: it stays quarantined; "
                                       "decide it through the API or `datashare quarantine`")  # fmt: skip
        super().process_trigger_event_error(event)


def build(entry: dict[str, Any]) -> DAG:
    code = entry["item"]
    # Classic operators in a `with DAG` block: a third cheaper to parse than the TaskFlow decorators.
    with DAG(
        dag_id=dag_id_for(code),
        schedule=entry["schedule"],
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["datashare", "ingest", entry["department"], entry["access"]],
        doc_md=f"Pulls **{entry['title']}** ({code}) from {entry['department']}/{entry['source_system']} "
        f"({entry['format']}), validates it and publishes a new version, or quarantines the batch and asks for a "
        "decision (Required actions).",
    ) as pipeline:
        # The item's Asset as the inlet (the task reads the current version) keeps it active in Airflow; the alias
        # announces a version only when one is published.
        ingest = PythonOperator(task_id="ingest", python_callable=pull_and_ingest, op_args=[code],
                                inlets=[item_asset(code)], outlets=[versions_alias(code)])  # fmt: skip
        ingest >> QuarantineDecision(task_id="decide", item_code=code)
    return pipeline


for _entry in pipelines():
    build(_entry)
