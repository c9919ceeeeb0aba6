"""Classification review in the console: the queue by item (data officers: every department; stewards: their own),
one item's pending fields with the detection evidence (share, masked examples) and the proposals, the officers'
batch decision over many fields with one reason, and a steward's proposal for a field. Each action calls the API's
own endpoint function (api/routers/review.py): its checks, its rules (a change needs a reason) and its audit."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.console.refusals import REFUSALS, refusal
from api.console.web import PREFIX, Form, FormDep, Page, PageDep
from api.routers import review as api
from api.routers.items import may_see
from catalog.access.policy import EVERYWHERE
from catalog.classification.review import FieldDecision, ProposalCreate
from catalog.classification.types import SemanticType
from catalog.items import service as items
from catalog.items.errors import ItemNotFound

router = APIRouter()
PAGE_SIZE = 50
MAX_FIELDS = 1000  # one item's pending fields, all on one page


@router.get("/review", response_model=None)
def queue_by_item(page: PageDep, offset: int = 0) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/review")
    try:
        found = api.pending_items(page.session, page.guard, None, PAGE_SIZE, max(0, min(offset, 10_000_000)))
    except REFUSALS as error:
        page.session.rollback()
        return page.render("error.html", 403, message=refusal(page, error))
    reports = REPORTS if page.guard.allows(EVERYWHERE, "classification", "read") else ()
    return page.render("review.html", found=found, offset=offset, page_size=PAGE_SIZE, reports=reports)


@router.get("/review/items/{code}", response_model=None)
def item_queue(code: str, page: PageDep, decided: int | None = None) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/review/items/{code}")
    return _item_page(page, code, notice=decided)


def _item_page(page: Page, code: str, status: int = 200, error: str | None = None, notice: int | None = None,
               form: Form | None = None) -> HTMLResponse:  # fmt: skip
    try:
        item = items.get_item(page.session, code)
        if not may_see(item, page.guard):
            raise ItemNotFound(code)
        queue = api.queue(page.session, page.guard, None, None, None, None, code, MAX_FIELDS, 0)
    except REFUSALS as error_:
        page.session.rollback()
        return page.render("error.html", 404, message=refusal(page, error_))
    may_decide = page.guard.allows(EVERYWHERE, "classification", "decide")
    may_propose = not may_decide and page.guard.allows(item.department, "classification", "propose")
    return page.render(
        "review_item.html", status, item=item, entries=queue.entries, error=error, decided=notice,
        may_decide=may_decide, may_propose=may_propose, semantic_types=list(SemanticType),
        chosen=set(form.getlist("field")) if form else set(), values=form.as_dict() if form else {},
    )  # fmt: skip


@router.post("/review/items/{code}/decide", response_model=None)
def decide(code: str, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    """One decision for every chosen field: approve each as declared, or set them all to one level (and semantic
    type), with the reason the officers' rules ask for."""
    fields = form.getlist("field")
    if not fields:
        return _item_page(page, code, 422, page.t("Choose at least one field."), form=form)
    change = form.get("decision") == "change"
    reason = form.get("reason").strip() or None
    try:
        decisions = [
            FieldDecision(item=code, field=name, reason=reason,
                          level=form.get("level") if change else None,  # type: ignore[arg-type]
                          semantic_type=(form.get("semantic_type") or None) if change else None)  # type: ignore[arg-type]
            for name in fields
        ]  # fmt: skip
        report = api.decide(api.Decisions(decisions=decisions), page.session, page.guard)
    except REFUSALS as error:
        page.session.rollback()
        return _item_page(page, code, 422, _decision_refusal(page, error), form=form)
    return page.redirect(f"{PREFIX}/review/items/{code}?decided={report.decided}")


def _decision_refusal(page: Page, error: Exception) -> str:
    if isinstance(error, ValidationError):
        return page.t("Choose a level for the change.")
    message = getattr(error, "message", "")
    if "reason" in message:
        return page.t("Give a reason: a change, or an approval below a proposal's level, needs one.")
    return refusal(page, error)


@router.post("/review/items/{code}/propose", response_model=None)
def propose(code: str, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    try:
        body = ProposalCreate(item=code, field=form.get("field"), level=form.get("level"),  # type: ignore[arg-type]
                              semantic_type=form.get("semantic_type") or None,  # type: ignore[arg-type]
                              reason=form.get("reason").strip())  # fmt: skip
        api.propose(body, page.session, page.guard)
    except REFUSALS as error:
        page.session.rollback()
        return _item_page(page, code, 422, refusal(page, error), form=form)
    return page.redirect(f"{PREFIX}/review/items/{code}")


REPORTS = ("levels", "unreviewed", "proposals", "decisions")


@router.get("/review/reports/{name}.csv", response_model=None)
def report_csv(name: str, page: PageDep) -> Response | HTMLResponse:
    """A classification report as CSV (data officers), through the API's endpoint and its audit."""
    if name not in REPORTS:
        return page.render("error.html", 404, message=page.t("There is no such page."))
    try:
        made = api.report(name, page.session, page.guard, None, "csv")  # type: ignore[arg-type]
    except REFUSALS as error:
        page.session.rollback()
        return page.render("error.html", 403, message=refusal(page, error))
    assert isinstance(made, Response)  # the CSV form of the report
    return made
