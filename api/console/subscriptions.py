"""Subscriptions and notifications in the console: requesting a subscription from an item's page, "my
subscriptions", the requests awaiting a steward's or an officer's decision, deciding and revoking, the data itself (a
preview as the API serves it, masked, and the downloads), and the person's notifications. Every action calls the
API's own endpoint function, so its checks, its rules and its audit are the API's; the buttons shown are only those
the person's roles allow."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError

from api.console import deliveries, notices
from api.console.refusals import REFUSALS, refusal
from api.console.scope_form import posted_scope, scope_values
from api.console.web import PREFIX, FormDep, Page, PageDep
from api.deps import MAX_ID
from api.routers import data as data_api
from api.routers import notifications as notifications_api
from api.routers import subscriptions as api
from api.routers.items import may_see
from catalog.delivery import service as delivery
from catalog.items import service as items
from catalog.items.errors import ItemNotFound
from catalog.items.schemas import ItemRead, SharingType
from catalog.subscriptions.service import (
    REAPPROVAL_PROVIDER_APPROVED,
    REAPPROVAL_REQUESTED,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionStatus,
)

router = APIRouter()
ACTIONS = ("approve", "reject", "revoke", "reapproval", "renew", "approve-reapproval", "reject-reapproval")
PREVIEW_ROWS = 20
DEFAULT_DAYS = 90


def _visible_item(page: Page, code: str) -> ItemRead | None:
    try:
        item = items.get_item(page.session, code)
    except ItemNotFound:
        return None
    return item if may_see(item, page.guard) else None


def may_preview(page: Page, code: str, verifying: bool = False) -> bool:
    """Whether the API would serve this person the item's data (an active subscription of their department's), or
    with ``verifying`` answer their look-ups (a subscription of either kind)."""
    if page.principal.anonymous or not page.guard.allows(str(page.principal.department), "data", "read"):
        return False
    try:
        delivery.grant_for(page.session, page.guard.platform.access, page.principal, code, verifying=verifying)
    except REFUSALS:
        page.session.rollback()
        return False
    return True


def may_request(page: Page, item: ItemRead) -> bool:
    own = page.principal.department
    return (
        not page.principal.anonymous and item.department != own and item.sharing_type is not SharingType.NOT_SHARED
        and page.guard.allows(str(own), "subscription", "request")
    )  # fmt: skip


def _officer_level(page: Page) -> int:
    return int(page.request.app.state.platform.settings.officer_level)


@router.get("/items/{code}/request", response_class=HTMLResponse)
def request_form(code: str, page: PageDep) -> HTMLResponse:
    item = _visible_item(page, code)
    if item is None or not may_request(page, item):
        if not page.principal.anonymous:
            page.guard.refused("subscription.request", item_code=code[:64])
        return page.render("error.html", 404, message=page.t("There is no such item, or it is not yours to see."))
    return page.render("request.html", item=item, chosen=set(), values={"period_days": str(DEFAULT_DAYS)}, error=None,
                       invalid=set(), officer_level=_officer_level(page))  # fmt: skip


@router.post("/items/{code}/request", response_model=None)
def request_submitted(code: str, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    item = _visible_item(page, code)
    if item is None:
        return page.render("error.html", 404, message=page.t("There is no such item, or it is not yours to see."))
    declared = {field.name for field in item.fields}
    chosen = [name for name in form.getlist("fields") if name in declared]
    try:
        body = SubscriptionCreate.model_validate({
            "item": code, "fields": chosen, "purpose": form.get("purpose", "").strip(),
            "legal_basis": form.get("legal_basis", "").strip(), "period_days": form.get("period_days", ""),
            "kind": form.get("kind") or "read", "scope": posted_scope(form),
        })  # fmt: skip
        made = api.request(body, page.session, page.guard, page.request.app.state.platform)
    except REFUSALS as error:
        page.session.rollback()
        return page.render("request.html", 422, item=item, chosen=set(chosen), values=form.as_dict(),
                           error=refusal(page, error), invalid=_invalid_fields(error),
                           officer_level=_officer_level(page))  # fmt: skip
    return page.redirect(f"{PREFIX}/subscriptions/{made.id}")


def _invalid_fields(error: Exception) -> set[str]:
    if not isinstance(error, ValidationError):
        return set()
    return {str(problem["loc"][0]) for problem in error.errors() if problem.get("loc")}


@router.get("/subscriptions", response_model=None)
def listing(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/subscriptions")
    try:
        everything = api.listing(page.session, page.guard, page.request.app.state.platform, None, 500)
    except REFUSALS:
        everything = []
    own = page.principal.department
    mine = [s for s in everything if s.consumer == own]
    to_decide = [s for s in everything if _may_approve(page, s)]
    provided = [s for s in everything if s.provider == own and s not in to_decide]
    return page.render("subscriptions.html", mine=mine, to_decide=to_decide, provided=provided)


@router.get("/subscriptions/{subscription_id}", response_class=HTMLResponse)
def detail(subscription_id: int, page: PageDep) -> HTMLResponse:
    found = _read(page, subscription_id)
    if found is None:
        return page.render(
            "error.html", 404, message=page.t("There is no such subscription, or it is not yours to see.")
        )
    return _detail(page, found)


def _detail(page: Page, found: SubscriptionRead, status: int = 200, error: str | None = None) -> HTMLResponse:
    max_days = page.guard.platform.settings.max_subscription_days
    may = _actions(page, found)
    item = _visible_item(page, found.item) if may["approve"] else None
    return page.render("subscription.html", status, sub=found, error=error, may=may, max_days=max_days,
                       item_fields=item.fields if item else [], scope_values=scope_values(found.scope),
                       delivery=deliveries.section(page, found))  # fmt: skip


def _read(page: Page, subscription_id: int) -> SubscriptionRead | None:
    if page.principal.anonymous or not 1 <= subscription_id <= MAX_ID:
        return None
    try:
        return api.read(subscription_id, page.session, page.guard, page.request.app.state.platform)
    except REFUSALS:
        page.session.rollback()
        return None


def _may_approve(page: Page, sub: SubscriptionRead) -> bool:
    if sub.status is SubscriptionStatus.REQUESTED:
        return page.guard.allows(sub.provider, "subscription", "decide")
    if sub.status is SubscriptionStatus.PROVIDER_APPROVED:
        return page.guard.allows(sub.provider, "subscription", "decide_officer")
    return False


def _may_approve_reapproval(page: Page, sub: SubscriptionRead) -> bool:
    """As the API's re-approval approval: the provider's steward first, a data officer second."""
    if sub.reapproval_status == REAPPROVAL_REQUESTED:
        return page.guard.allows(sub.provider, "subscription", "decide")
    if sub.reapproval_status == REAPPROVAL_PROVIDER_APPROVED:
        return page.guard.allows(sub.provider, "subscription", "decide_officer")
    return False


def _actions(page: Page, sub: SubscriptionRead) -> dict[str, bool]:
    allows = page.guard.allows
    decider = allows(sub.provider, "subscription", "decide_officer") or allows(sub.provider, "subscription", "decide")
    active = sub.status is SubscriptionStatus.ACTIVE
    return {
        "approve": _may_approve(page, sub),
        "reject": decider and sub.status in (SubscriptionStatus.REQUESTED, SubscriptionStatus.PROVIDER_APPROVED),
        "revoke": active and any(allows(side, "subscription", "revoke") for side in (sub.consumer, sub.provider)),
        "reapproval": active and bool(sub.masked_fields) and sub.reapproval_status is None
        and allows(sub.consumer, "subscription", "request"),
        "renew": active and sub.reapproval_status is None and allows(sub.consumer, "subscription", "request"),
        "approve-reapproval": active and _may_approve_reapproval(page, sub),
        "reject-reapproval": active and sub.reapproval_status is not None and decider,
        "data": active and sub.consumer == page.principal.department and sub.kind == "read",
        "verify": active and sub.consumer == page.principal.department,
    }  # fmt: skip


@router.post("/subscriptions/{subscription_id}/{action}", response_model=None)
def decide(subscription_id: int, action: str, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    found = _read(page, subscription_id)
    if found is None or action not in ACTIONS:
        return page.render(
            "error.html", 404, message=page.t("There is no such subscription, or it is not yours to see.")
        )
    platform = page.request.app.state.platform
    try:
        if action == "approve":
            level = form.get("level") or None
            approval = api.Approval(level=level, scope=posted_scope(form))  # type: ignore[arg-type]
            api.approve(subscription_id, page.session, page.guard, platform, approval)
        elif action == "reapproval":
            api.request_reapproval(subscription_id, page.session, page.guard, platform)
        elif action == "renew":
            renewal = api.Renewal(days=form.get("days", "").strip() or 0)  # type: ignore[arg-type]
            api.renew(subscription_id, renewal, page.session, page.guard, platform)
        elif action == "approve-reapproval":
            approval = api.Approval(level=form.get("level") or None)  # type: ignore[arg-type]
            api.approve_reapproval(subscription_id, page.session, page.guard, platform, approval)
        elif action == "reject-reapproval":
            reason = api.Decision(reason=form.get("reason", "").strip())
            api.reject_reapproval(subscription_id, reason, page.session, page.guard, platform)
        else:
            reason = api.Decision(reason=form.get("reason", "").strip())
            (api.reject if action == "reject" else api.revoke)(
                subscription_id, reason, page.session, page.guard, platform
            )
    except REFUSALS as error:
        page.session.rollback()
        current = _read(page, subscription_id) or found
        return _detail(page, current, 422, refusal(page, error))
    return page.redirect(f"{PREFIX}/subscriptions/{subscription_id}")


def _from_another_site(page: Page) -> bool:
    """A read of data is audited as the person's own act: a link followed from another site (the browser says so
    in Sec-Fetch-Site) does not read it for them."""
    return page.request.headers.get("sec-fetch-site", "none") not in ("same-origin", "none")


@router.get("/items/{code}/preview", response_class=HTMLResponse)
async def preview(code: str, page: PageDep) -> HTMLResponse:
    if _from_another_site(page):
        return page.render("error.html", 403, message=page.t("Open the data from the console's own pages."))
    try:
        body, _ = await run_in_threadpool(data_api.read_page, code, page.session, page.guard, 0, PREVIEW_ROWS, None, [])
    except REFUSALS as error:
        return page.render("error.html", 403, message=refusal(page, error))
    shown: dict[str, Any] = json.loads(body)
    return page.render("preview.html", code=code, data=shown)


@router.get("/items/{code}/data.{kind}", response_model=None)
def download(code: str, kind: str, page: PageDep) -> StreamingResponse | HTMLResponse:
    if _from_another_site(page):
        return page.render("error.html", 403, message=page.t("Open the data from the console's own pages."))
    platform = page.request.app.state.platform
    try:
        if kind == "csv":
            return data_api.download_csv(code, page.session, page.guard, platform, None, [])
        if kind == "parquet":
            return data_api.download_parquet(code, page.session, page.guard, platform, None, [])
    except REFUSALS as error:
        return page.render("error.html", 403, message=refusal(page, error))
    return page.render("error.html", 404, message=page.t("There is no such page."))


@router.get("/notifications", response_model=None)
def notifications(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/notifications")
    try:
        listed = notifications_api.listing(page.session, page.guard, False, 100)
    except REFUSALS as error:
        page.session.rollback()
        return page.render("error.html", 403, message=refusal(page, error))
    return page.render("notifications.html", notifications=listed, texts=notices.said(page, listed))


@router.post("/notifications/{notification_id}/read", response_model=None)
def mark_read(notification_id: int, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    if 1 <= notification_id <= MAX_ID:
        try:
            notifications_api.mark_read(notification_id, page.session, page.guard)
        except REFUSALS as error:
            page.session.rollback()
            return page.render("error.html", 404, message=refusal(page, error))
    return page.redirect(f"{PREFIX}/notifications")
