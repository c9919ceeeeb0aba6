"""Ingestion runs and quarantine over HTTP: run records (filtered, keyset-paged), a batch's quality report and every
failing row, and the quarantined batches with their release and discard. Ops read and decide for every department
(``runs read`` and ``runs operate`` everywhere); a provider's stewards read their own department's items' runs. A
batch of another department's item is 404, as if it did not exist; every refusal and every decision is audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import Guard, GuardDep, Id, SessionDep
from api.problems import PROBLEM_JSON
from catalog import logsafe
from catalog.access.policy import EVERYWHERE
from catalog.departments.schemas import CODE_PATTERN
from catalog.ingest import runs
from catalog.ingest.failing_rows import FailingRowsNotKept, read_failing_rows
from catalog.ingest.quarantine import discard_batch, release_batch
from catalog.ingest.runs import MAX_ID, MAX_PAGE, Page, RunFilter, RunOutcome
from catalog.items.schemas import ITEM_CODE_PATTERN

router = APIRouter(tags=["runs"])
log = logsafe.logger(__name__)
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The batch is not quarantined (decided already), or the release is refused as it stands",
          "content": {PROBLEM_JSON: {}}},
}  # fmt: skip
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
ItemCode = Annotated[str | None, Query(max_length=64, pattern=ITEM_CODE_PATTERN, description="Only this item's runs.")]
DepartmentCode = Annotated[
    str | None, Query(max_length=32, pattern=CODE_PATTERN, description="Only the runs of this department's items.")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


class RunRead(BaseModel):
    """A run's record, as ``datashare runs --json`` prints it."""

    batch: int
    item: str
    department: str = Field(description="The department that provides the item.")
    outcome: RunOutcome
    file_name: str
    trigger: str = Field(description="Who or what ran it: cli:USER (cli to a department's readers), airflow:DAG/RUN.")
    host: str | None = Field(description="Where it ran (ops only: null to a department's readers).")
    pid: int | None = Field(description="Its process id (ops only: null to a department's readers).")
    started_at: str = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})
    seconds: float | None
    rows_read: int
    rows_accepted: int
    rows_rejected: int = Field(description="Rows read but not published.")
    rows_failed_rules: int | None = Field(description="Rows that broke at least one rule.")
    rows_refused_with_batch: int | None = Field(description="Rows that broke none but went with a refused batch.")
    failing_rows_kept: bool = Field(description="Whether every failing row can be downloaded (/failing-rows).")
    version: int | None = Field(description="The version it published (or its release did).")
    quality_success: bool | None
    reasons: list[str]
    decided_by: str | None = Field(description="The operator who released or discarded it.")


class RunReport(RunRead):
    report: dict[str, Any] = Field(
        description="Each check's outcome, counts, first failing rows and examples (masked above level 2)."
    )


class RunsPage(BaseModel):
    runs: list[RunRead]
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last page.")


class QuarantinePage(BaseModel):
    batches: list[RunRead]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class Discard(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S", description="Why: recorded with the decision.")


class Release(Discard):
    force: bool = Field(default=False, description="Release even though a newer version was published.")


@router.get("/runs", response_model=RunsPage)
def listing(
    session: SessionDep,
    guard: GuardDep,
    item: ItemCode = None,
    department: DepartmentCode = None,
    outcome: Annotated[list[RunOutcome], Query(description="Any of these outcomes; repeatable.")] = [],  # noqa: B006
    since: Annotated[datetime | None, Query(description="Started at or after this time (no zone: UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Started before this time (no zone: UTC).")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The previous page's next_before.")] = None,
    limit: Limit = 100,
) -> RunsPage:
    """Run records, newest first; every filter given must match. Ops see every department's, a steward their own
    department's items' (another department is refused). A run whose process is known dead shows as interrupted."""
    visible_to = readable_departments(guard, department)
    wanted = RunFilter(item=item, department=department, outcomes=tuple(outcome), since=since, until=until)
    _settle_dead_runs(session, guard)
    page = runs.run_page(session, wanted, Page(before, limit), visible_to=visible_to)
    return RunsPage(runs=[RunRead.model_validate(record) for record in page.runs], next_before=page.next_cursor)


def newest_runs(
    session: SessionDep, guard: Guard, items: list[str], department: str | None = None
) -> dict[str, RunRead]:
    """Each of the items' newest run, as ``GET /runs?item=`` would give it to the caller first (the console's
    pipelines page shows one per row)."""
    visible_to = readable_departments(guard, department)
    _settle_dead_runs(session, guard)
    found = runs.newest_runs(session, items, visible_to=visible_to)
    return {code: RunRead.model_validate(record) for code, record in found.items()}


@router.get("/runs/{batch}", response_model=RunReport)
def report(batch: Id, session: SessionDep, guard: GuardDep) -> RunReport:
    """A batch's record and its whole quality report."""
    visible_to = readable_departments(guard)
    _settle_dead_runs(session, guard, batch)
    with guard.refusals_audited("runs.read", batch_id=batch):
        return RunReport.model_validate(runs.quality_report(session, batch, visible_to=visible_to))


@router.get("/runs/{batch}/failing-rows", response_class=StreamingResponse, responses=CSV)
def failing_rows(batch: Id, session: SessionDep, guard: GuardDep) -> StreamingResponse:
    """Every failing row of the batch as CSV (``row,field,rule``; no values), however many: the report shows the
    first few of each check. 404 when no row failed a rule."""
    visible_to = readable_departments(guard)
    with guard.refusals_audited("runs.read", batch_id=batch):
        path, sha256 = runs.failing_rows_file(session, batch, visible_to=visible_to)
        blocks = _failing_rows(batch, path, sha256)
    disposition = f'attachment; filename="batch-{batch}-failing-rows.csv"'
    return StreamingResponse(blocks, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})  # fmt: skip


@router.get("/quarantine", response_model=QuarantinePage)
def quarantine(
    session: SessionDep,
    guard: GuardDep,
    item: ItemCode = None,
    department: DepartmentCode = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="The previous page's next_after.")] = None,
    limit: Limit = 100,
) -> QuarantinePage:
    """Quarantined batches waiting for a release or discard, oldest first; seen as ``GET /runs`` shows runs."""
    visible_to = readable_departments(guard, department)
    wanted = RunFilter(item=item, department=department, outcomes=(RunOutcome.QUARANTINED,))
    page = runs.run_page(session, wanted, Page(after, limit, newest_first=False), visible_to=visible_to)
    return QuarantinePage(batches=[RunRead.model_validate(record) for record in page.runs],
                          next_after=page.next_cursor)  # fmt: skip


@router.post("/quarantine/{batch}/release", response_model=RunRead, responses=CONFLICT)
def release(batch: Id, body: Release, session: SessionDep, guard: GuardDep) -> RunRead:
    """Publish a quarantined batch despite its quality report, a recorded override (ops only). The export must
    still conform; a batch older than the current version needs ``force``. Audited as the caller."""
    visible_to = _operable(batch, session, guard, "quarantine.release")
    with guard.refusals_audited("quarantine.release", batch_id=batch):
        release_batch(session, batch, guard.principal.subject, body.reason, force=body.force)
    return RunRead.model_validate(runs.run_record(session, batch, visible_to=visible_to))


@router.post("/quarantine/{batch}/discard", response_model=RunRead, responses=CONFLICT)
def discard(batch: Id, body: Discard, session: SessionDep, guard: GuardDep) -> RunRead:
    """Close a quarantined batch without publishing it (ops only); the raw export and the report stay."""
    visible_to = _operable(batch, session, guard, "quarantine.discard")
    with guard.refusals_audited("quarantine.discard", batch_id=batch):
        discard_batch(session, batch, guard.principal.subject, body.reason)
    return RunRead.model_validate(runs.run_record(session, batch, visible_to=visible_to))


def readable_departments(guard: Guard, department: str | None = None, action: str = "read") -> str:
    """Whose runs the caller reads: every department's (``runs read`` everywhere: ops) or their own (its
    stewards). Anyone else, and a steward asking for another department, is refused (401 or 403, audited as the
    ``action`` they came for)."""
    principal = guard.signed_in()
    if guard.allows(EVERYWHERE, *runs.READ):
        return EVERYWHERE
    own = str(principal.department)
    if not guard.allows(own, *runs.READ):
        guard.require(own, runs.READ[0], action)
    if department is not None and department != own:
        guard.require(department, *runs.READ)
    return own


def _operable(batch: int, session: SessionDep, guard: Guard, action: str) -> str:
    """The caller may decide on the batch: they see it (else 404, as if it did not exist) and may operate runs in
    its item's department (else 403). Returns whose runs they read, which says how much of a record they see."""
    visible_to = readable_departments(guard, action=runs.OPERATE[1])
    with guard.refusals_audited(action, batch_id=batch):
        record = runs.run_record(session, batch, visible_to=visible_to)
    guard.require(record["department"], *runs.OPERATE, item_code=record["item"])
    return visible_to


def _settle_dead_runs(session: SessionDep, guard: Guard, batch: int | None = None) -> None:
    """As ``datashare runs`` does before it lists: a run whose process is known dead is recorded interrupted (of
    every run, or of the one batch asked for)."""
    hours = guard.platform.settings.ingest_run_timeout_hours
    runs.settle_dead_runs(session, stale_after=timedelta(hours=hours), batch_id=batch)


def _failing_rows(batch: int, path: str | None, sha256: str | None) -> Iterator[bytes]:
    """The file's blocks, checked against its recorded digest first; the refusal names no server path."""
    try:
        return read_failing_rows(path, sha256)
    except FailingRowsNotKept:
        if path is not None:
            log.warning("the failing rows file of batch %s is missing or is not the file recorded", batch)
        raise FailingRowsNotKept(
            f"batch {batch} has no file of failing rows: no row failed a rule, or the file is not kept"
        ) from None
