"""The audit trail is sealed every five minutes: the events that are safe to seal go into signed, hash-chained
blocks and the new head is appended to the heads file outside the database (and logged). Then the whole chain is
verified and the result recorded (GET /audit/verification); a verification that finds anything altered, missing,
inserted or reordered FAILS the run, so that ops see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

DAG_ID = "seal_audit"


def seal() -> dict[str, Any]:
    from catalog.audit import chain, heads
    from catalog.audit.signing import platform_key
    from catalog.db import make_engine, session_scope
    from catalog.settings import get_settings

    settings = get_settings()
    key = platform_key(settings)
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            report = chain.seal(session, key, block_size=settings.audit_block_size,
                                wait_seconds=settings.audit_seal_wait_seconds)  # fmt: skip
    finally:
        engine.dispose()
    if report.head is not None:  # after the commit: the file never holds a head the chain did not keep
        heads.publish(settings.resolved_audit_heads_file, report.head)
    return report.model_dump(mode="json", exclude={"head"}) | {"head_block": report.head and report.head.block}


def verify() -> dict[str, Any]:
    from catalog.audit import verification
    from catalog.audit.errors import ChainBroken
    from catalog.audit.schemas import VerificationRead
    from catalog.audit.signing import trusted_keys
    from catalog.db import make_engine, session_scope
    from catalog.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:  # the result is recorded whatever it says
            result = VerificationRead.model_validate(
                verification.verify(
                    session,
                    trusted_keys=trusted_keys(settings),
                    heads_file=settings.resolved_audit_heads_file,
                    by=f"airflow:{DAG_ID}",
                )
            )
    finally:
        engine.dispose()
    if not result.ok:
        first = result.failures[0]
        raise ChainBroken(f"audit chain verification {result.id} failed with {len(result.failures)} failure(s); "
                          f"first: {first.kind}: {first.message}")  # fmt: skip
    return {"verification": result.id, "blocks": result.blocks_checked, "events": result.rows_checked,
            "unsealed": result.unsealed_count}  # fmt: skip


with DAG(
    dag_id=DAG_ID,
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "datashare", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["datashare", "audit"],
    doc_md="Seals the audit trail into signed, hash-chained blocks, then verifies the chain; a failed "
    "verification fails the run.",
):
    PythonOperator(task_id="seal", python_callable=seal) >> PythonOperator(task_id="verify", python_callable=verify)
