"""Freshness over HTTP: whether each pulled item's exports come on time by its declared update frequency, per item,
per department and over every department the caller may read. Ops read every department's (``runs read``
everywhere); a provider's stewards read their own department's items. Refusals are audited by the guard."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Guard, GuardDep, SessionDep
from api.routers.items import read as read_item
from api.routers.runs import readable_departments
from catalog.access.policy import EVERYWHERE
from catalog.departments.schemas import CODE_PATTERN
from catalog.ingest import runs
from catalog.ops import freshness
from catalog.ops.schemas import FreshnessStatus, ItemFreshness, StatusCounts

router = APIRouter(tags=["freshness"])
DepartmentCode = Annotated[
    str | None, Query(max_length=32, pattern=CODE_PATTERN, description="Only this department's items.")
]


class FreshnessPage(BaseModel):
    as_of: datetime = Field(description="When it was computed: every status is as of this moment.")
    overall: StatusCounts = Field(
        description="Counts over every department asked for and readable (platform-wide for ops), whatever the "
        "status filter."
    )
    departments: list[StatusCounts] = Field(description="The same counts per department.")
    total: int = Field(description="How many items are in the status asked for (all of them without a filter).")
    items: list[ItemFreshness] = Field(
        description="The items, by department and code, in the status asked for: all of them, or the page asked for."
    )


@router.get("/freshness", response_model=FreshnessPage)
def listing(
    session: SessionDep,
    guard: GuardDep,
    department: DepartmentCode = None,
    status: Annotated[FreshnessStatus | None, Query(description="Only items in this status.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="At most this many items (default: all).")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items skipped before the page.")] = 0,
) -> FreshnessPage:
    """Each published item with a source system: on time, late, overdue or never received against its update
    frequency, with when it last received an export, last published and was last checked. Ops see every
    department's, a steward their own department's (another department is refused)."""
    visible_to = readable_departments(guard, department)
    scope = department or (None if visible_to == EVERYWHERE else visible_to)
    found = freshness.freshness_listing(session, department=scope, status=status, grace=_grace(guard), limit=limit,
                                        offset=offset)  # fmt: skip
    counted = found.summary
    return FreshnessPage(as_of=counted.as_of, overall=counted.overall, departments=counted.departments,
                         total=found.total, items=found.items)  # fmt: skip


@router.get("/items/{code}/freshness", response_model=ItemFreshness)
def item(code: str, session: SessionDep, guard: GuardDep) -> ItemFreshness:
    """One item's freshness (404 for an item that is not pulled: not published, or without a source system). Its
    department's stewards and ops may read it."""
    department = read_item(code, session, guard).department  # 404 for an item the caller may not know about
    guard.require(department, *runs.READ, item_code=code)
    return freshness.freshness_of(session, code, grace=_grace(guard))


def _grace(guard: Guard) -> timedelta:
    return timedelta(minutes=guard.platform.settings.freshness_grace_minutes)
