"""The audit trail, for data officers and platform admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import GuardDep, SessionDep
from catalog.audit import service as audit

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEventRead(BaseModel):
    id: int
    at: datetime
    principal: str
    department: str | None
    action: str
    outcome: str
    item_code: str | None
    version: int | None
    subscription_id: int | None
    fields_returned: list[str]
    fields_masked: list[str]
    rows: int | None
    detail: dict[str, Any]


@router.get("", response_model=list[AuditEventRead])
def events(
    session: SessionDep,
    guard: GuardDep,
    item: str | None = None,
    department: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventRead]:
    """Newest first."""
    guard.require("*", "audit", "read")
    found = audit.events(session, item_code=item, department=department, since=since, limit=limit)
    return [AuditEventRead.model_validate(event, from_attributes=True) for event in found]
