"""Classification review over HTTP: the queue of pending fields (data officers: every department; stewards: their
own), officers' batch decisions, stewards' proposals for their department's fields, an item's decision history
and the review reports (JSON or CSV). Only data officers decide; every refusal is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from api.deps import GuardDep, SessionDep
from api.problems import PROBLEM_JSON, TITLES
from api.routers.items import read as read_item
from catalog.classification import reports, review
from catalog.classification.review import (
    DecisionReport,
    FieldDecision,
    PendingItem,
    ProposalCreate,
    QueueEntry,
    QueueFilter,
)
from catalog.classification.types import SemanticType
from catalog.departments.schemas import CODE_PATTERN
from catalog.items.schemas import ITEM_CODE_PATTERN

router = APIRouter(tags=["review"])
EVERYWHERE = "*"
MAX_DECISIONS = 20_000  # a bureau's whole catalog in one batch (issue 5: 20,000 fields within 10 s)
# 20,000 decisions with reasons do not fit the API's 1 MB: this route alone takes up to 16 MB (about 800 bytes a
# decision; a decision with a field name and a 50-character Chinese reason, JSON-escaped, is about 450).
DECISIONS_PATH = "/review/decisions"
DECISIONS_MAX_BYTES = 16 << 20
ReportName = Literal["levels", "unreviewed", "proposals", "decisions"]  # reports.REPORTS


class QueuePage(BaseModel):
    total: int = Field(description="How many pending fields match the filters (all pages).")
    entries: list[QueueEntry]


class PendingItemsPage(BaseModel):
    total: int = Field(description="How many items with pending fields match the filters (all pages).")
    entries: list[PendingItem]


class Decisions(BaseModel):
    decisions: list[FieldDecision] = Field(min_length=1, max_length=MAX_DECISIONS)


class ProposalCreated(BaseModel):
    id: int


class ReviewRead(BaseModel):
    id: int
    field: str
    decided_by: str
    decided_at: datetime
    from_level: int
    to_level: int
    from_semantic_type: str
    to_semantic_type: str
    from_masking: str | None  # None: decided before masking rules were recorded with decisions
    to_masking: str | None
    suggested_level: int | None
    reason: str | None


class Report(BaseModel):
    report: ReportName
    department: str | None
    rows: list[dict[str, Any]]


@router.get("/review/queue", response_model=QueuePage)
def queue(
    session: SessionDep,
    guard: GuardDep,
    department: Annotated[str | None, Query(max_length=32, pattern=CODE_PATTERN)] = None,
    semantic_type: SemanticType | None = None,
    level: Annotated[int | None, Query(ge=1, le=99)] = None,
    finding: Annotated[
        SemanticType | Literal["any"] | None,
        Query(description="Fields with an open detection proposal of this semantic type (any: of any type)."),
    ] = None,
    item: Annotated[str | None, Query(max_length=64, pattern=ITEM_CODE_PATTERN, description="One item's.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> QueuePage:
    """Pending fields, oldest first. Data officers see every department; a steward sees their own department's
    (asking for another department is refused)."""
    principal = guard.signed_in()
    if not guard.allows(EVERYWHERE, "classification", "read"):
        department = department or str(principal.department)
        guard.require(department, "classification", "read")
    wanted = QueueFilter(department, semantic_type, level, finding, item, limit, offset)
    total, entries = review.queue(session, wanted)
    return QueuePage(total=total, entries=entries)


@router.get("/review/items", response_model=PendingItemsPage)
def pending_items(
    session: SessionDep,
    guard: GuardDep,
    department: Annotated[str | None, Query(max_length=32, pattern=CODE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PendingItemsPage:
    """The queue by item, oldest first: how many fields of each wait, and how many of those have a proposal.
    Data officers see every department; a steward sees their own department's."""
    principal = guard.signed_in()
    if not guard.allows(EVERYWHERE, "classification", "read"):
        department = department or str(principal.department)
        guard.require(department, "classification", "read")
    total, entries = review.pending_items(session, QueueFilter(department, limit=limit, offset=offset))
    return PendingItemsPage(total=total, entries=entries)


@router.post(
    DECISIONS_PATH,
    response_model=DecisionReport,
    responses={413: {"description": TITLES[413], "content": {PROBLEM_JSON: {}}}},
)
def decide(body: Decisions, session: SessionDep, guard: GuardDep) -> DecisionReport:
    """A data officer's decisions on many fields at once, all or none: each field approved as it stands or
    changed. A change, and an approval below the level a proposal suggests, needs a reason. A raised level is
    masked for the active subscriptions approved below it from their next read; both departments are notified."""
    guard.require(EVERYWHERE, "classification", "decide")
    with guard.refusals_audited("classification.decide", fields=len(body.decisions)):
        return review.decide(session, body.decisions, guard.principal)


@router.post("/review/proposals", response_model=ProposalCreated, status_code=status.HTTP_201_CREATED)
def propose(body: ProposalCreate, session: SessionDep, guard: GuardDep) -> ProposalCreated:
    """A steward proposes a level (and semantic type) for a field of their department's item; the field waits for
    a data officer's decision."""
    guard.signed_in()
    with guard.refusals_audited("classification.propose", item_code=body.item):
        item = read_item(body.item, session, guard)
    guard.require(item.department, "classification", "propose", item_code=body.item)
    with guard.refusals_audited("classification.propose", item_code=body.item, field=body.field):
        return ProposalCreated(id=review.propose(session, body, guard.principal))


@router.get("/items/{code}/review-history", response_model=list[ReviewRead])
def history(code: str, session: SessionDep, guard: GuardDep) -> list[dict[str, Any]]:
    """Every decision on the item's fields, oldest first: data officers, and the owning department's stewards."""
    guard.signed_in()
    with guard.refusals_audited("classification.read", item_code=code):
        item = read_item(code, session, guard)
    if not guard.allows(EVERYWHERE, "classification", "read"):
        guard.require(item.department, "classification", "read", item_code=code)
    return review.history(session, code)


@router.get(
    "/review/reports/{name}",
    response_model=Report,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def report(
    name: ReportName,
    session: SessionDep,
    guard: GuardDep,
    department: Annotated[str | None, Query(max_length=32, pattern=CODE_PATTERN)] = None,
    output: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Report | Response:
    """levels: fields per level per department; unreviewed: fields never reviewed; proposals: open proposals;
    decisions: decisions per officer over time. Data officers only."""
    guard.require(EVERYWHERE, "classification", "read")
    with guard.refusals_audited("classification.report", report=name, of_department=department):
        rows = reports.build(session, name, department)
    if output == "csv":
        disposition = f'attachment; filename="classification-{name}.csv"'
        return Response(reports.to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": disposition})  # fmt: skip
    return Report(report=name, department=department, rows=rows)
