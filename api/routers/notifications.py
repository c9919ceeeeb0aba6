"""Notifications for the caller's department (its stewards and users): fields of a subscription masked from now
on, and the like. Another department's notification is 404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import GuardDep, Id, SessionDep
from catalog.notifications import service
from catalog.notifications.service import NotificationRead

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=list[NotificationRead])
def listing(
    session: SessionDep,
    guard: GuardDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationRead]:
    """The caller's department's notifications, newest first (only unread ones with ``unread=true``)."""
    department = _own_department(guard)
    return service.for_department(session, department, unread_only=unread, limit=limit)


@router.post("/{notification_id}/read", response_model=NotificationRead)
def mark_read(notification_id: Id, session: SessionDep, guard: GuardDep) -> NotificationRead:
    department = _own_department(guard)
    with guard.refusals_audited("notification.read", notification_id=notification_id):
        return service.mark_read(session, department, notification_id)


def _own_department(guard: GuardDep) -> str:
    department = str(guard.signed_in().department)
    guard.require(department, "notification", "read")
    return department
