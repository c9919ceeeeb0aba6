"""The catalog in the console: search (keywords, department, level, sharing type, open data, tag; paged) and an
item's page. What is listed and shown is what the API's /items would give the same person (the same rules,
imported from api/routers/items.py)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select

from api.console.lookups import department_names
from api.console.ops import moment
from api.console.refusals import REFUSALS
from api.console.subscriptions import may_preview, may_request
from api.console.verification import may_verify
from api.console.web import PageDep
from api.routers import freshness as freshness_api
from api.routers import runs as runs_api
from api.routers import subscriptions as subscriptions_api
from api.routers.items import may_see, visible_query
from catalog.departments.models import Department
from catalog.ingest import runs
from catalog.items import service as items
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import SearchQuery, SharingType
from catalog.subscriptions import usage

router = APIRouter()
PAGE_SIZE = 20
RECENT_BATCHES = 5
FILTERS = ("text", "department", "level", "sharing_type", "open_data", "tag", "page")


@router.get("/", response_class=HTMLResponse)
def search(page: PageDep) -> HTMLResponse:
    asked = {name: value for name in FILTERS if (value := page.request.query_params.get(name, "").strip())}
    try:
        query = SearchQuery.model_validate({**asked, "page_size": PAGE_SIZE})
        error = None
    except ValidationError:
        query, error = SearchQuery(page_size=PAGE_SIZE), page.t("Some filters were not valid and were left out.")
    found = items.search(page.session, visible_query(query, page.guard))
    departments = page.session.execute(
        select(Department.code, Department.name_zh, Department.name_en).order_by(Department.code)
    ).all()
    return page.render(
        "catalog.html", query=query, asked=asked, found=found, error=error, departments=departments,
        sharing_types=list(SharingType), pages=max(1, math.ceil(found.total / PAGE_SIZE)),
    )  # fmt: skip


@router.get("/items/{code}", response_class=HTMLResponse)
def item(code: str, page: PageDep) -> HTMLResponse:
    try:
        found = items.get_item(page.session, code)
    except ItemNotFound:
        found = None
    if found is None or not may_see(found, page.guard):
        return page.render("error.html", 404, message=page.t("There is no such item, or it is not yours to see."))
    freshness = None
    if found.source_system and page.guard.allows(found.department, *runs.READ):  # as GET /items/{code}/freshness
        try:
            freshness = freshness_api.item(code, page.session, page.guard)
        except REFUSALS:  # not pulled (not published): no freshness to show
            page.session.rollback()
    may_review = page.guard.allows(found.department, "classification", "read")
    states = _review_states(page, code) if may_review else {}
    return page.render("item.html", item=found, freshness=freshness, may_request=may_request(page, found),
                       may_preview=may_preview(page, code), may_verify=may_verify(page, code),
                       may_review=may_review, review_states=states,
                       version=_current_version(page, found), batches=_recent_batches(page, found),
                       subscribers=_subscribers(page, code, found.department), names=department_names(page),
                       at=moment)  # fmt: skip


def _current_version(page: PageDep, item: Any) -> usage.CurrentVersion | None:
    """The current version's number, rows and publication, to those the API tells its size and time: the readers of
    its data (open data, an active subscription) and of its runs (its stewards, ops)."""
    if item.open_data or may_preview(page, item.code) or page.guard.allows(item.department, *runs.READ):
        return usage.current_version(page.session, item.code)
    return None


def _recent_batches(page: PageDep, item: Any) -> list[runs_api.RunRead] | None:
    """The item's last runs and their quality outcome, for those who read its runs (as GET /runs?item=)."""
    if not page.guard.allows(item.department, *runs.READ):
        return None
    try:
        return runs_api.listing(page.session, page.guard, item.code, None, [], None, None, None, RECENT_BATCHES).runs
    except REFUSALS:  # runs read in the item's department, not in the person's own (several departments' roles)
        page.session.rollback()
        return None


def _subscribers(page: PageDep, code: str, provider: str) -> list[usage.Subscriber]:
    """The departments subscribed, each shown to those who may know of its subscription (as the API decides)."""
    if page.principal.anonymous:
        return []
    found = usage.subscribers(page.session, code)
    return [subscriber for subscriber in found if subscriptions_api.may_know(page.guard, subscriber.consumer, provider)]


def _review_states(page: PageDep, code: str) -> dict[str, str]:
    """Each field's review state (approved or pending), for the people who review the item's classification."""
    rows = page.session.execute(
        select(ItemField.name, ItemField.review_status).join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .where(CatalogItem.code == code)
    )  # fmt: skip
    return {name: state for name, state in rows}
