"""Ops in the console: the pipelines (every pulled item whose runs the person may read, with its department and
source system, schedule, last run, current version, freshness and its DAG in Airflow), the quarantined batches
with their release and discard, and a batch's quality report with every failing row as CSV.

Every page reads through the API's own endpoint functions (api/routers/runs.py, api/routers/freshness.py), so who
sees what is the API's rule (ops: every department; a provider's stewards: their own), and a release or a discard
calls the API's ``release`` or ``discard``: its checks (a reason, a batch still quarantined, ``runs operate`` in the
item's department) and its audit. The forms are shown only to those the guard allows to decide."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError

from api.console.i18n import marked as _
from api.console.lookups import department_names, item_titles
from api.console.refusals import REFUSALS, refusal
from api.console.web import PREFIX, FormDep, Page, PageDep
from api.problems import ApiProblem
from api.routers import freshness as freshness_api
from api.routers import runs as runs_api
from catalog.access.policy import EVERYWHERE
from catalog.delivery.access_cache import PublishedVersion
from catalog.departments.schemas import CODE_PATTERN
from catalog.errors import Forbidden, InvalidTransition, NotFound
from catalog.ingest import runs
from catalog.ingest.failing_rows import FailingRowsNotKept
from catalog.ingest.quarantine import BatchNotQuarantined
from catalog.ops.schemas import FreshnessStatus, ItemFreshness

router = APIRouter()
PAGE_SIZE = 50  # pipelines a page
QUARANTINE_PAGE = 50  # quarantined batches a page, oldest first
DECISIONS = ("release", "discard")
FILTERS = ("department", "status")


NO_BATCH = _("There is no such batch, or it is not yours to see.")


@dataclass(frozen=True)
class Pipeline:
    """One row of the pipelines page."""

    freshness: ItemFreshness
    last_run: runs_api.RunRead | None
    version: PublishedVersion | None
    airflow: str


@dataclass(frozen=True)
class Typed:
    """What a refused decision's form held, shown again in the same form."""

    batch: int
    action: str
    reason: str
    force: bool
    invalid: bool  # the reason itself was refused


def dag_url(page: Page, item_code: str) -> str:
    """The item's DAG (and its runs) in Airflow's UI; the DAG id as dags/ingest_items.py names it."""
    base = str(page.request.app.state.platform.settings.airflow_url).rstrip("/")
    return f"{base}/dags/ingest_{item_code.lower().replace('-', '_')}"


def moment(value: str | None) -> datetime | None:
    """A run record's time (ISO 8601 text, as the API serves it) for ``when``."""
    return datetime.fromisoformat(value) if value else None


def _sign_in(page: Page) -> RedirectResponse:
    path = page.request.url.path + (f"?{page.request.url.query}" if page.request.url.query else "")
    return page.redirect(f"{PREFIX}/sign-in?next={quote(path, safe='/')}")


def _status_of(error: Exception) -> int:
    if isinstance(error, ApiProblem):
        return error.status
    if isinstance(error, ValidationError):
        return 422
    if isinstance(error, Forbidden):
        return 403
    return 404 if isinstance(error, NotFound) else 409


def _refused(page: Page, error: Exception, message: str | None = None) -> HTMLResponse:
    page.session.rollback()
    return page.render("error.html", _status_of(error), message=message or refusal(page, error))


def _not_found(page: Page, error: Exception) -> str | None:
    """What to say for a batch that is not found (None: the usual refusal)."""
    if isinstance(error, FailingRowsNotKept):
        return page.t("This batch has no file of failing rows: no row failed a rule, or it is not kept.")
    return page.t(NO_BATCH) if isinstance(error, NotFound) else None


def _query_int(page: Page, name: str) -> int | None:
    value = page.request.query_params.get(name, "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    return int(value) if 0 < int(value) <= runs.MAX_ID else None


# --- the pipelines ------------------------------------------------------------------------------------------------


@router.get("/ops", response_model=None)
def pipelines(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return _sign_in(page)
    asked = {name: value for name in FILTERS if (value := page.request.query_params.get(name, "").strip())}
    error = None
    if not _valid_filters(asked):
        asked, error = {}, page.t("Some filters were not valid and were left out.")
    department = asked.get("department")
    status = FreshnessStatus(asked["status"]) if "status" in asked else None
    number = _query_int(page, "page") or 1
    try:
        found = _pipelines_page(page, department, status, number)
        if not found.items and number > 1:  # past the last page: the last page
            number = max(1, math.ceil(found.total / PAGE_SIZE))
            found = _pipelines_page(page, department, status, number)
        waiting = runs_api.quarantine(page.session, page.guard, None, department, None, runs.MAX_PAGE)
    except REFUSALS as refused:
        return _refused(page, refused)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    shown = found.items
    last = runs_api.newest_runs(page.session, page.guard, [entry.item for entry in shown], department)
    access = page.guard.platform.access
    rows = []
    for entry in shown:
        item_access = access.item(page.session, entry.item)
        version = item_access.current if item_access is not None else None
        rows.append(Pipeline(entry, last.get(entry.item), version, dag_url(page, entry.item)))
    return page.render(
        "ops.html", rows=rows, found=found, asked=asked, error=error, pages=pages, here=number,
        quarantined=len(waiting.batches), more_quarantined=waiting.next_after is not None,
        names=department_names(page), everywhere=page.guard.allows(EVERYWHERE, *runs.READ),
        statuses=list(FreshnessStatus), at=moment,
    )  # fmt: skip


def _pipelines_page(page: Page, department: str | None, status: FreshnessStatus | None, number: int
                    ) -> freshness_api.FreshnessPage:  # fmt: skip
    offset = (number - 1) * PAGE_SIZE
    return freshness_api.listing(page.session, page.guard, department, status, PAGE_SIZE, offset)


def _valid_filters(asked: dict[str, str]) -> bool:
    """The filters as the API's query parameters take them (a department code, a freshness status)."""
    department = asked.get("department")
    if department is not None and (len(department) > 32 or not re.fullmatch(CODE_PATTERN, department)):
        return False
    return asked.get("status") in (None, *FreshnessStatus)


# --- quarantine ---------------------------------------------------------------------------------------------------


@router.get("/ops/quarantine", response_model=None)
def quarantine(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return _sign_in(page)
    notice = None
    for outcome, message in (("released", _("Batch %(batch)s was released.")),
                             ("discarded", _("Batch %(batch)s was discarded."))):  # fmt: skip
        decided = _query_int(page, outcome)
        if decided is not None and _has_outcome(page, decided, outcome):
            notice = page.t(message, batch=decided)
    return _quarantine_page(page, _query_int(page, "after"), notice=notice)


def _has_outcome(page: Page, batch: int, outcome: str) -> bool:
    """Whether the batch (one the person may see) was decided so: an address alone announces nothing."""
    if not page.may_anywhere(*runs.READ):
        return False  # the page refuses them (and audits it) once
    try:
        record = runs.run_record(page.session, batch, visible_to=runs_api.readable_departments(page.guard))
    except REFUSALS:
        page.session.rollback()
        return False
    return bool(record["outcome"] == outcome)


def _quarantine_page(page: Page, after: int | None = None, status: int = 200, error: str | None = None,
                     typed: Typed | None = None, notice: str | None = None) -> HTMLResponse:  # fmt: skip
    try:
        found = runs_api.quarantine(page.session, page.guard, None, None, after, QUARANTINE_PAGE)
    except REFUSALS as refused:
        return _refused(page, refused)
    operable = {run.batch for run in found.batches if _may_operate(page, run)}
    return page.render("quarantine.html", status, batches=found.batches, next_after=found.next_after, after=after,
                       operable=operable, names=department_names(page), titles=item_titles(page, {run.item for run in
                       found.batches}), error=error, typed=typed, notice=notice, at=moment)  # fmt: skip


def _may_operate(page: Page, run: runs_api.RunRead) -> bool:
    return run.outcome is runs.RunOutcome.QUARANTINED and page.guard.allows(run.department, *runs.OPERATE)


@router.post("/ops/quarantine/{batch}/{action}", response_model=None)
def decide(batch: int, action: str, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    if action not in DECISIONS or not 1 <= batch <= runs.MAX_ID:
        return page.render("error.html", 404, message=page.t("There is no such page."))
    typed = form.get("reason", "")
    force = form.get("force") == "true"
    back_to_report = form.get("back") == "report"
    try:
        if action == "release":
            runs_api.release(batch, runs_api.Release(reason=typed.strip(), force=force), page.session, page.guard)
        else:
            runs_api.discard(batch, runs_api.Discard(reason=typed.strip()), page.session, page.guard)
    except REFUSALS as error:
        page.session.rollback()
        kept = Typed(batch, action, typed, force, isinstance(error, ValidationError))
        message, status = _decision_refusal(page, error, action, force), _status_of(error)
        if back_to_report:
            return _report_page(page, batch, status, message, kept)
        return _quarantine_page(page, None, status, message, kept)
    if back_to_report:
        return page.redirect(f"{PREFIX}/runs/{batch}")
    return page.redirect(f"{PREFIX}/ops/quarantine?{'released' if action == 'release' else 'discarded'}={batch}")


def _decision_refusal(page: Page, error: Exception, action: str, force: bool) -> str:
    """What to fix, in the person's language: the API's refusals, told for a decision on a batch."""
    if isinstance(error, ValidationError):
        return page.t("Give the reason for your decision (1 to 1,000 characters): it is recorded with it.")
    if isinstance(error, BatchNotQuarantined):
        return page.t("This batch is no longer quarantined: it was released or discarded already.")
    if isinstance(error, NotFound):
        return page.t(NO_BATCH)
    if action == "release" and not force and type(error) is InvalidTransition:
        return page.t(
            "A newer version was published after this batch. To replace it with this batch, tick "
            "“even if a newer version was published” and release again."
        )
    return refusal(page, error)


# --- a batch's quality report -------------------------------------------------------------------------------------


@router.get("/runs/{batch}", response_model=None)
def report(batch: int, page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return _sign_in(page)
    return _report_page(page, batch)


def _report_page(page: Page, batch: int, status: int = 200, error: str | None = None,
                 typed: Typed | None = None) -> HTMLResponse:  # fmt: skip
    if not 1 <= batch <= runs.MAX_ID:
        return page.render("error.html", 404, message=page.t(NO_BATCH))
    try:
        found = runs_api.report(batch, page.session, page.guard)
    except REFUSALS as refused:
        return _refused(page, refused, _not_found(page, refused))
    checks: list[dict[str, Any]] = list(found.report.get("checks") or [])
    failing = [check for check in checks if not check.get("success", True)]
    return page.render(
        "run.html", status, run=found, failing=failing, passed=len(checks) - len(failing),
        dropped=list(found.report.get("dropped_rows") or []), may_operate=_may_operate(page, found),
        airflow=dag_url(page, found.item), error=error, typed=typed, at=moment, names=department_names(page),
        titles=item_titles(page, {found.item}),
    )  # fmt: skip


@router.get("/runs/{batch}/failing-rows.csv", response_model=None)
def failing_rows(batch: int, page: PageDep) -> StreamingResponse | HTMLResponse:
    if not 1 <= batch <= runs.MAX_ID:
        return page.render("error.html", 404, message=page.t(NO_BATCH))
    try:
        return runs_api.failing_rows(batch, page.session, page.guard)
    except REFUSALS as refused:
        return _refused(page, refused, _not_found(page, refused))
