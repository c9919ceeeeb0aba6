"""What an ingestion pipeline's tasks do, apart from Airflow's API: pull and ingest, ask for and apply an operator's
decision on a quarantined batch, and announce releases made elsewhere. Each answers with a ``TaskReport`` whose first
line says what happened, so a task log starts with it (dags/ingest_items.py, dags/announce_releases.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session

from catalog.access.service import acting_user
from catalog.audit import service as audit
from catalog.db import session_scope, utcnow
from catalog.departments.models import Department
from catalog.errors import DomainError
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.ingest.quarantine import BatchNotFound, BatchNotQuarantined, discard_batch, release_batch
from catalog.ingest.runner import pull_and_ingest
from catalog.ingest.service import IngestOutcome, changes_said
from catalog.items.models import CatalogItem
from catalog.ops.freshness import freshness_of
from catalog.ops.schemas import LATE_STATUSES, ItemFreshness
from catalog.settings import Settings

Outcome = Literal[
    "published", "quarantined", "awaits_decision", "nothing_new", "waiting", "late", "discarded", "decided"
]
RECHECK_AFTER = timedelta(minutes=5)  # how soon a pull that found a due export missing looks again
SHOWN_CHECKS = 20  # failing checks listed in a required action's body; the whole report is linked
MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+\-.!|~:@]")  # ":" "." "@": no bare URL or address is linked


@dataclass(frozen=True)
class TaskReport:
    outcome: Outcome
    summary: str  # the first line of the task's log
    details: list[str] = field(default_factory=list)
    item: str = ""
    batch: int | None = None
    version: int | None = None
    rows: int | None = None
    recheck_at: datetime | None = None  # waiting: when to pull again

    @property
    def asset_extra(self) -> dict[str, Any]:
        """What the item's Asset event carries: enough for a downstream DAG to read the new version."""
        return {"item": self.item, "version": self.version, "rows": self.rows, "batch": self.batch}

    @property
    def publishes(self) -> bool:
        return self.version is not None and self.outcome in ("published", "decided")

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "summary": self.summary, "item": self.item, "batch": self.batch,
                "version": self.version, "rows": self.rows}  # fmt: skip


def report_link(settings: Settings, batch_id: int) -> str:
    """Where the whole quality report is: the API's run record (and the command that prints it)."""
    return f"{settings.public_url.rstrip('/')}/runs/{batch_id} (or `datashare quality-report {batch_id}`)"


# --- pull and ingest ----------------------------------------------------------------------------------------------


def ingest_newest(engine: Engine, settings: Settings, item_code: str, trigger: str) -> TaskReport:
    """Pull the item's newest export and ingest it; with nothing new, say whether an export is due or late."""
    outcome = pull_and_ingest(engine, settings, item_code, trigger)
    if outcome is None:
        return _nothing_new(engine, settings, item_code, "its drop folder has no export")
    if outcome.outcome == "published":
        return _published(outcome)
    if outcome.outcome == "quarantined":
        return _quarantined(settings, outcome)
    if outcome.duplicate_of_outcome == "quarantined":
        return TaskReport(
            "awaits_decision",
            f"AWAITS A DECISION {item_code}: its newest export is batch {outcome.batch_id}, still quarantined",
            [f"release or discard it: the required action of the run that quarantined it, POST /quarantine/"
             f"{outcome.batch_id}/release or /discard, or `datashare quarantine release {outcome.batch_id}`",
             f"the quality report: {report_link(settings, outcome.batch_id)}"],
            item_code, outcome.batch_id,
        )  # fmt: skip
    return _nothing_new(engine, settings, item_code,
                        f"the newest export was already ingested as batch {outcome.batch_id} "
                        f"({outcome.duplicate_of_outcome})")  # fmt: skip


def _published(outcome: IngestOutcome) -> TaskReport:
    rejected = f"; {outcome.rows_rejected} row(s) left out" if outcome.rows_rejected else ""
    what = f"with {outcome.rows_accepted} rows"
    if outcome.changes:
        what = f"incrementally ({changes_said(outcome.changes)})"
    return TaskReport(
        "published",
        f"PUBLISHED {outcome.item} version {outcome.version} {what} (batch {outcome.batch_id}{rejected})",
        outcome.reasons, outcome.item, outcome.batch_id, outcome.version, outcome.rows_accepted,
    )  # fmt: skip


def _quarantined(settings: Settings, outcome: IngestOutcome) -> TaskReport:
    return TaskReport(
        "quarantined",
        f"QUARANTINED {outcome.item} batch {outcome.batch_id}: " + "; ".join(outcome.reasons),
        [f"{outcome.rows_read} rows read; the current version is unchanged and keeps being served",
         f"the quality report: {report_link(settings, outcome.batch_id)}",
         "release or discard it under Required actions in Airflow, through the API or with `datashare quarantine`"],
        outcome.item, outcome.batch_id,
    )  # fmt: skip


def _nothing_new(engine: Engine, settings: Settings, item_code: str, why: str) -> TaskReport:
    with session_scope(engine) as session:
        feed = freshness_of(session, item_code)
    due, last = _when(feed.due_at), _when(feed.last_received_at) if feed.last_received_at else "never"
    if feed.status in LATE_STATUSES:
        summary = f"LATE {item_code}: no new export ({why}); the last came {last}, one was due {due} ({feed.status})"
        return TaskReport("late", summary, _freshness_details(feed), item_code)
    if feed.export_due:  # due, within the grace: pull again soon, and fail once it is late
        recheck = feed.as_of + RECHECK_AFTER
        summary = (f"WAITING FOR {item_code}'s EXPORT: {why}; one was due {due} (the last came {last}); it is late "
                   f"after the grace period, and pulled again at {_when(recheck)}")  # fmt: skip
        return TaskReport("waiting", summary, _freshness_details(feed), item_code, recheck_at=recheck)
    summary = f"NO NEW EXPORT {item_code}: {why}; the next is due {due}, nothing is late"
    return TaskReport("nothing_new", summary, _freshness_details(feed), item_code)


def _freshness_details(feed: ItemFreshness) -> list[str]:
    checked = f"last checked {_when(feed.last_checked_at)} ({feed.last_check_outcome})" if feed.last_checked_at else ""
    published = f"last published {_when(feed.last_published_at)}" if feed.last_published_at else "never published"
    return [f"update frequency {feed.update_frequency}; {published}" + (f"; {checked}" if checked else "")]


def _when(moment: datetime | None) -> str:
    return "(unknown)" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


# --- an operator's decision on a quarantined batch ---------------------------------------------------------------


def run_batch(engine: Engine, item_code: str, trigger: str) -> int | None:
    """The batch this pipeline run quarantined (found by the run's trigger, never by what a task passed on: XCom can
    be changed by any Airflow user who may edit the run), None if it quarantined none."""
    with session_scope(engine) as session:
        return session.scalar(
            select(IngestBatch.id)
            .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
            .where(CatalogItem.code == item_code, IngestBatch.trigger == trigger)
            .where(IngestBatch.outcome.in_(("quarantined", "released", "discarded")))
            .order_by(IngestBatch.id.desc())
            .limit(1)
        )


def decision_request(engine: Engine, settings: Settings, batch_id: int) -> tuple[str, str]:
    """The subject and the Markdown body of the required action: the batch, why it was refused, its failing checks
    (counts and row numbers, never a value: the body is stored in Airflow's database, readable by every Airflow
    user), and the whole report's link. Declared and exported text is escaped: it renders as text, never a link."""
    with session_scope(engine) as session:
        batch, item_code, title = session.execute(
            select(IngestBatch, CatalogItem.code, CatalogItem.title)
            .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
            .where(IngestBatch.id == batch_id)
        ).one()
        subject = f"Quarantined batch {batch_id} of {item_code}: release or discard?"
        lines = [f"**{item_code}** {_markdown_text(title)} — batch {batch_id}, {batch.rows_read} rows read, started "
                 f"{_when(batch.started_at)}.", "", "**Why it was refused**", ""]  # fmt: skip
        lines += [f"- {_markdown_text(reason)}" for reason in batch.reasons]
        lines += ["", "**Failing checks**", "", *_failing_checks(batch.report), ""]
        lines += [f"The whole report, every failing row and masked examples: {report_link(settings, batch_id)}.", "",
                  "**Release** publishes the batch as the item's next version despite the report (rows whose values "
                  "do not parse are left out); **Discard** closes it and the current version stays. Either needs a "
                  "reason, recorded with your name. Without a decision the batch stays quarantined."]  # fmt: skip
    return subject, "\n".join(lines)


def _failing_checks(report: dict[str, Any]) -> list[str]:
    failing = [check for check in report.get("checks", []) if not check.get("success", True)]
    lines = []
    for check in failing[:SHOWN_CHECKS]:
        rows = ", ".join(str(int(row)) for row in check.get("failing_rows", [])[:10])
        line = f"- {_markdown_text(str(check.get('field')))}: {_markdown_text(str(check.get('rule')))}"
        line += f" — {int(check['failed'])} row(s)" if check.get("failed") is not None else ""
        lines.append(line + (f"; rows {rows}" if rows else ""))
    if len(failing) > SHOWN_CHECKS:
        lines.append(f"- … and {len(failing) - SHOWN_CHECKS} more failing checks")
    return lines or ["- (no failing rule: the export could not be read or its columns drifted; see the reasons)"]


def _markdown_text(text: str) -> str:
    """Text as Markdown shows it literally: no link, image, emphasis or HTML can come out of a title or a reason."""
    return MARKDOWN_SPECIAL.sub(lambda special: "\\" + special.group(0), " ".join(text.split()))


def apply_decision(
    engine: Engine, item_code: str, trigger: str, release: bool, reason: str, username: str
) -> TaskReport:
    """Release or discard the batch this run quarantined, as the platform user who chose it in Airflow's UI: the same
    code path, permission (``runs operate`` on the item's department) and audit as ``POST /quarantine/{batch}/…`` and
    ``datashare quarantine``; a refusal is audited too. A batch decided meanwhile by another route is left as it
    is."""
    batch_id = run_batch(engine, item_code, trigger)
    if batch_id is None:
        raise BatchNotFound(f"the run {trigger} of {item_code} quarantined no batch")
    action = "quarantine.release" if release else "quarantine.discard"
    with session_scope(engine) as session:
        try:
            principal = acting_user(session, username, _department_of(session, batch_id), "runs", "operate")
        except DomainError as refusal:
            session.rollback()
            audit.record(session, f"airflow:{username or '?'}", None, action, "denied", reason=refusal.code,
                         batch_id=batch_id, item_code=item_code, via="airflow")  # fmt: skip
            session.commit()
            raise
        try:
            if release:
                outcome = release_batch(session, batch_id, principal.subject, reason)
                mark_announced(session, [batch_id])  # the task announces it: the announce DAG must not again
            else:
                outcome = discard_batch(session, batch_id, principal.subject, reason)
        except BatchNotQuarantined:
            session.rollback()
            return _decided_elsewhere(session, batch_id)
    if release:
        return TaskReport(
            "decided", f"RELEASED {outcome.item} batch {batch_id} as version {outcome.version} with "
            f"{outcome.rows_accepted} rows, by {username}: {reason}",
            item=outcome.item, batch=batch_id, version=outcome.version, rows=outcome.rows_accepted,
        )  # fmt: skip
    return TaskReport(
        "discarded",
        f"DISCARDED {outcome.item} batch {batch_id}, by {username}: {reason}",
        ["the current version stays; the raw export and its report are kept"],
        outcome.item,
        batch_id,
    )


def _department_of(session: Session, batch_id: int) -> str:
    return session.execute(
        select(Department.code)
        .join(CatalogItem, CatalogItem.department_id == Department.id)
        .join(IngestBatch, IngestBatch.item_id == CatalogItem.id)
        .where(IngestBatch.id == batch_id)
    ).scalar_one()


def _decided_elsewhere(session: Session, batch_id: int) -> TaskReport:
    batch, item_code = session.execute(
        select(IngestBatch, CatalogItem.code)
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .where(IngestBatch.id == batch_id)
    ).one()
    by = f" by {batch.decided_by} at {_when(batch.decided_at)}" if batch.decided_by else ""
    return TaskReport("nothing_new", f"ALREADY DECIDED {item_code} batch {batch_id}: {batch.outcome}{by}; "
                      "nothing was changed", item=item_code, batch=batch_id)  # fmt: skip


def still_quarantined(engine: Engine, batch_id: int) -> bool:
    with session_scope(engine) as session:
        return session.scalar(select(IngestBatch.outcome).where(IngestBatch.id == batch_id)) == "quarantined"


# --- announcing releases made outside Airflow ---------------------------------------------------------------------


def pending_announcements(session: Session, limit: int = 100) -> list[TaskReport]:
    """Versions published outside Airflow not announced as an Asset event yet, oldest first: released batches, and
    exports ingested through the command line or the API that are still their item's current version (downstream
    DAGs, push delivery among them, start from the event)."""
    outside_airflow = and_(
        IngestBatch.outcome == "published", IngestBatch.trigger.not_like("airflow:%"),
        CatalogItem.current_version_id == IngestBatch.version_id,
    )  # fmt: skip
    released = session.execute(
        select(IngestBatch.id, CatalogItem.code, ItemVersion.number, ItemVersion.row_count, IngestBatch.decided_by)
        .add_columns(IngestBatch.outcome, IngestBatch.trigger)
        .join(CatalogItem, IngestBatch.item_id == CatalogItem.id)
        .join(ItemVersion, IngestBatch.version_id == ItemVersion.id)
        .where(or_(IngestBatch.outcome == "released", outside_airflow), IngestBatch.announced_at.is_(None))
        .order_by(IngestBatch.id)
        .limit(limit)
    )
    return [
        TaskReport(
            "decided",
            f"RELEASED {code} batch {batch} as version {version} with {rows} rows, by {by}"
            if outcome == "released"
            else f"PUBLISHED {code} batch {batch} as version {version} with {rows} rows, by {trigger}",
            item=code,
            batch=batch,
            version=version,
            rows=rows,
        )
        for batch, code, version, rows, by, outcome, trigger in released
    ]


def mark_announced(session: Session, batch_ids: list[int]) -> None:
    if batch_ids:
        session.execute(update(IngestBatch).where(IngestBatch.id.in_(batch_ids)).values(announced_at=utcnow()))
