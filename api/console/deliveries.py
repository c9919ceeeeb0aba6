"""Push delivery in the console: on a subscription's page, its consumer's people see where new versions go and what
was sent; its stewards add and remove targets and pause or resume deliveries. Ops (and the consumer's people, for
their department) see the delivery records, the failures first. Every action calls the API's own endpoint function."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from api.console.refusals import REFUSALS, refusal
from api.console.web import PREFIX, FormDep, Page, PageDep
from api.deps import MAX_ID
from api.routers import deliveries as api
from catalog.access.policy import EVERYWHERE
from catalog.push.targets import TargetCreate
from catalog.subscriptions.service import SubscriptionRead

router = APIRouter()
RECENT = 10


def section(page: Page, sub: SubscriptionRead) -> dict[str, Any] | None:
    """What the subscription's page shows of its push delivery: to its consumer's people and to ops only (a
    provider does not learn where its data goes)."""
    if sub.kind != "read" or page.principal.anonymous:
        return None
    try:
        targets = api.list_targets(sub.id, page.session, page.guard)
        records = api.list_deliveries(page.session, page.guard, None, None, sub.id, RECENT)
    except REFUSALS:
        page.session.rollback()
        return None
    manage = page.principal.department == sub.consumer and page.guard.allows(sub.consumer, *api.MANAGE)
    return {"targets": targets, "records": records, "manage": manage, "paused": sub.deliveries_paused}


@router.post("/subscriptions/{subscription_id}/targets", response_model=None)
def add(subscription_id: int, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    values = {name: form.get(name).strip() or None for name in ("name", "kind", "url", "db_schema", "db_table",
                                                                 "mode", "file_format")}  # fmt: skip
    kind = values.get("kind")
    keep = {"webhook": ("url",), "database": ("db_schema", "db_table", "mode"), "file": ("url", "file_format")}
    body = {"name": values["name"], "kind": kind} | {
        name: values[name] for name in keep.get(str(kind), ()) if values[name] is not None
    }
    return _act(page, subscription_id, lambda: api.add_target(
        _id(subscription_id), TargetCreate.model_validate(body), page.session, page.guard,
        page.request.app.state.platform))  # fmt: skip


@router.post("/subscriptions/{subscription_id}/targets/{target_id}/delete", response_model=None)
def remove(subscription_id: int, target_id: int, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    return _act(page, subscription_id, lambda: api.delete_target(_id(target_id), page.session, page.guard))


@router.post("/subscriptions/{subscription_id}/deliveries/paused", response_model=None)
def pause(subscription_id: int, page: PageDep, form: FormDep) -> HTMLResponse | RedirectResponse:
    paused = api.Pause(paused=form.get("paused") == "true")
    return _act(page, subscription_id, lambda: api.pause(_id(subscription_id), paused, page.session, page.guard))


@router.get("/deliveries", response_model=None)
def listing(page: PageDep) -> HTMLResponse | RedirectResponse:
    if page.principal.anonymous:
        return page.redirect(f"{PREFIX}/sign-in?next={PREFIX}/deliveries")
    failed = page.request.query_params.get("status") == "failed"
    try:
        records = api.list_deliveries(page.session, page.guard, "failed" if failed else None, None, None, 200)
    except REFUSALS as error:
        return page.render("error.html", 403, message=refusal(page, error))
    everywhere = page.guard.allows(EVERYWHERE, *api.READ)
    return page.render("deliveries.html", records=records, failed=failed, everywhere=everywhere)


def _id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise api.DeliveryNotFound("no such delivery target or subscription")
    return value


def _act(page: Page, subscription_id: int, action: Any) -> HTMLResponse | RedirectResponse:
    from api.console.subscriptions import _detail, _read  # the subscription's page, where the result shows

    found = _read(page, subscription_id)
    if found is None:
        missing = page.t("There is no such subscription, or it is not yours to see.")
        return page.render("error.html", 404, message=missing)
    try:
        action()
    except REFUSALS as error:
        page.session.rollback()
        return _detail(page, found, 422, refusal(page, error))
    return page.redirect(f"{PREFIX}/subscriptions/{subscription_id}#delivery")
