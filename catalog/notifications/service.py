"""Notifications: records a department reads (its stewards and users), made in the transaction of the event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import NotFound
from catalog.notifications.models import Notification


class NotificationNotFound(NotFound):
    code = "notification_not_found"


@dataclass(frozen=True)
class NotificationRead:
    id: int
    department: str
    kind: str
    item_code: str | None
    subscription_id: int | None
    message: str
    detail: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


def notify_all(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add notifications: each a dict of department_id, kind, item_code, subscription_id, message, detail."""
    if rows:
        now = utcnow()
        session.execute(insert(Notification), [{"created_at": now, "detail": {}, **row} for row in rows])


def for_department(
    session: Session, department: str, unread_only: bool = False, limit: int = 100
) -> list[NotificationRead]:
    statement = (
        select(Notification, Department.code)
        .join(Department, Department.id == Notification.department_id)
        .where(Department.code == department)
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if unread_only:
        statement = statement.where(Notification.read_at.is_(None))
    return [_read(notification, code) for notification, code in session.execute(statement)]


def mark_read(session: Session, department: str, notification_id: int) -> NotificationRead:
    found = session.execute(
        select(Notification, Department.code)
        .join(Department, Department.id == Notification.department_id)
        .where(Notification.id == notification_id, Department.code == department)
    ).one_or_none()
    if found is None:  # another department's notification is not the caller's to know about
        raise NotificationNotFound(f"no notification {notification_id} for {department}")
    notification, code = found
    if notification.read_at is None:
        session.execute(update(Notification).where(Notification.id == notification_id).values(read_at=utcnow()))
        session.refresh(notification)
    return _read(notification, code)


def _read(notification: Notification, department: str) -> NotificationRead:
    return NotificationRead(
        notification.id, department, notification.kind, notification.item_code, notification.subscription_id,
        notification.message, notification.detail, notification.created_at, notification.read_at,
    )  # fmt: skip
