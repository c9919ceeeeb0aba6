"""The audit trail, for data officers and platform admins: the events, the sealed chain's head and the last
verification of the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import GuardDep, SessionDep
from api.problems import PROBLEM_JSON
from catalog.access.policy import EVERYWHERE
from catalog.audit import chain, trail, verification
from catalog.audit.errors import NothingSealed
from catalog.audit.schemas import MAX_ID, MAX_PAGE, AuditPage, AuditQuery, SignedHead, VerificationRead

router = APIRouter(prefix="/audit", tags=["audit"])
NOT_YET: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not yet: nothing sealed, or never verified", "content": {PROBLEM_JSON: {}}}
}


@router.get("", response_model=AuditPage)
def events(
    session: SessionDep,
    guard: GuardDep,
    action: Annotated[str | None, Query(max_length=64, description="Only this action, e.g. data.read.")] = None,
    principal: Annotated[str | None, Query(max_length=200, description="Only this principal, e.g. user:NAME.")] = None,
    department: Annotated[str | None, Query(max_length=32, description="Only this department's principals.")] = None,
    item: Annotated[str | None, Query(max_length=64, description="Only events about this item code.")] = None,
    since: Annotated[datetime | None, Query(description="At or after this time (no zone: UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (no zone: UTC).")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The previous page's next_before.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Newest first; every filter given must match. A page ends with ``next_before``: pass it as ``before`` for
    the next page (null on the last). The read is audited as ``audit.read``, with its filters."""
    guard.require(EVERYWHERE, *trail.PERMISSION)
    query = AuditQuery(action=action, principal=principal, department=department, item=item, since=since,
                       until=until, before=before, limit=limit)  # fmt: skip
    return trail.page(session, query, guard.principal)


@router.get("/head", response_model=SignedHead, responses=NOT_YET)
def head(session: SessionDep, guard: GuardDep) -> SignedHead:
    """The sealed chain's newest head, signed with the platform's audit key: another department's system may keep
    it and have the chain checked against it later (``datashare audit verify --head``)."""
    guard.require(EVERYWHERE, *trail.PERMISSION)
    found = chain.head(session)
    if found is None:
        raise NothingSealed()
    return found


@router.get("/verification", response_model=VerificationRead, responses=NOT_YET)
def last_verification(session: SessionDep, guard: GuardDep) -> VerificationRead:
    """The result of the chain's last verification (the seal_audit DAG's, or ``datashare audit verify``): what it
    checked, whether everything held, each failure found (the first one first) and the events not sealed yet."""
    guard.require(EVERYWHERE, *trail.PERMISSION)
    return VerificationRead.model_validate(verification.latest(session))
