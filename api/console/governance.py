"""The overview charts for data officers and ops; the audit trail for data officers (filters, newest first,
paged); a department's machine tokens for its stewards (create: the secret shown once; list; revoke). They call the
API's endpoint functions: its permission checks, and the audit of reading the trail and of every token change."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.console import charts
from api.console.refusals import REFUSALS, refusal
from api.console.web import PREFIX, FormDep, Page, PageDep
from api.deps import MAX_ID
from api.routers import audit as audit_api
from api.routers import auth as auth_api
from catalog.access.policy import EVERYWHERE

router = APIRouter()
AUDIT_FILTERS = ("action", "principal", "department", "item", "since", "until")
AUDIT_PAGE = 50


@router.get("/audit", response_model=None)
def audit_trail(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/audit")
    asked = {name: value for name in AUDIT_FILTERS if (value := page.request.query_params.get(name, "").strip())}
    before = page.request.query_params.get("before", "")
    error = None
    try:
        times = {name: datetime.fromisoformat(asked[name]) for name in ("since", "until") if name in asked}
        found = audit_api.events(
            page.session, page.guard, asked.get("action"), asked.get("principal"), asked.get("department"),
            asked.get("item"), times.get("since"), times.get("until"), int(before) if before.isdigit() else None,
            AUDIT_PAGE,
        )  # fmt: skip
    except ValueError:
        page.session.rollback()
        found, error = None, page.t("Some filters were not valid: dates are written 2026-12-01 or 2026-12-01T08:00.")
    except REFUSALS as refused:
        page.session.rollback()
        return page.render("error.html", 403, message=refusal(page, refused))
    return page.render("audit.html", found=found, asked=asked, error=error)


def _own_department(page: Page) -> str | None:
    own = page.principal.department
    return own if own is not None and page.guard.allows(own, "token", "manage") else None


@router.get("/tokens", response_model=None)
def tokens(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/tokens")
    return _tokens_page(page)


def _tokens_page(page: Page, status: int = 200, secret: str | None = None, error: str | None = None,
                 name: str = "") -> HTMLResponse:  # fmt: skip
    department = _own_department(page)
    if department is None:
        page.guard.refused("token.manage", on_behalf_of=page.principal.department)
        return page.render("error.html", 403, message=page.t("Your roles do not allow this."))
    listed = auth_api.list_tokens(department, page.session, page.guard)
    return page.render("tokens.html", status, tokens=listed, department=department, secret=secret, error=error,
                       name=name)  # fmt: skip


@router.post("/tokens", response_model=None)
def create_token(page: PageDep, form: FormDep) -> HTMLResponse:
    department = _own_department(page) or str(page.principal.department)
    name = form.get("name").strip()
    try:
        body = auth_api.TokenCreate(name=name, days=form.get("days") or 90)  # type: ignore[arg-type]
        made = auth_api.create_token(department, body, page.session, page.guard)
    except ValidationError:
        page.session.rollback()
        error = page.t("Name the token (what system uses it) and give a lifetime of 1 to 366 days.")
        return _tokens_page(page, 422, error=error, name=name)
    except REFUSALS as refused:
        page.session.rollback()
        return page.render("error.html", 403, message=refusal(page, refused))
    page.session.commit()
    return _tokens_page(page, 201, secret=made.token)


@router.post("/tokens/{token_id}/revoke", response_model=None)
def revoke_token(token_id: int, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    department = _own_department(page) or str(page.principal.department)
    if not 1 <= token_id <= MAX_ID:
        return page.render("error.html", 404, message=page.t("There is no such page."))
    try:
        auth_api.revoke_token(department, token_id, page.session, page.guard)
    except REFUSALS as refused:
        page.session.rollback()
        return page.render("error.html", 404, message=refusal(page, refused))
    return page.redirect(f"{PREFIX}/tokens")


# Each chart for whom the API would give its figures: the classification to data officers (GET /review/reports),
# freshness to ops (GET /freshness), the audit trail's activity to data officers (GET /audit).
CHART_PERMISSIONS = {
    "levels": ("classification", "read"),
    "review": ("classification", "read"),
    "freshness": ("runs", "read"),
    "activity": ("audit", "read"),
}


@router.get("/overview", response_model=None)
async def overview(page: PageDep) -> HTMLResponse | RedirectResponse:
    """Charts for the platform's global roles (data officers, ops): each only for who may read its figures."""
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/overview")
    shown = frozenset(chart for chart, (obj, action) in CHART_PERMISSIONS.items()
                      if page.guard.allows(EVERYWHERE, obj, action))  # fmt: skip
    if not shown:
        page.guard.refused("overview.read")
        return page.render("error.html", 403, message=page.t("Your roles do not allow this."))
    figures = await run_in_threadpool(charts.overview, page.session, shown)
    return page.render("overview.html", figures=figures, width=charts.WIDTH, label_width=charts.LABEL, bar=charts.BAR)
