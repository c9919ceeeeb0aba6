"""Notifications: records people read in the platform (and receive by mail or webhook), made in the transaction of
the event, with their deliveries (catalog/notifications/outbox.py). Who sees one is its audience
(catalog/notifications/audiences.py): a department's people or stewards, or data officers or ops everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import NotFound
from catalog.notifications import outbox
from catalog.notifications.audiences import DEPARTMENT, Audience
from catalog.notifications.models import Notification


class NotificationNotFound(NotFound):
    code = "notification_not_found"


@dataclass(frozen=True)
class NotificationRead:
    id: int
    department: str | None
    audience: str
    kind: str
    item_code: str | None
    subscription_id: int | None
    message: str
    detail: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


def notify_all(session: Session, rows: Sequence[dict[str, Any]]) -> list[Notification]:
    """Add notifications and enqueue their deliveries: each row a dict of department_id, kind, item_code,
    subscription_id, message, detail and (default ``department``) audience."""
    if not rows:
        return []
    now = utcnow()
    notifications = [Notification(**{"created_at": now, "detail": {}, "audience": DEPARTMENT, **row}) for row in rows]
    session.add_all(notifications)
    session.flush()
    outbox.enqueue(session, notifications)
    return notifications


def for_department(
    session: Session, department: str, unread_only: bool = False, limit: int = 100
) -> list[NotificationRead]:
    """A department's notifications for all its people."""
    return for_audiences(session, [Audience(DEPARTMENT, department)], unread_only, limit)


def for_audiences(
    session: Session, audiences: Sequence[Audience], unread_only: bool = False, limit: int = 100
) -> list[NotificationRead]:
    """The notifications of the given audiences, newest first."""
    statement = _visible(audiences).order_by(Notification.id.desc()).limit(limit)
    if unread_only:
        statement = statement.where(Notification.read_at.is_(None))
    return [_read(notification, code) for notification, code in session.execute(statement)]


def mark_read(session: Session, audiences: Sequence[Audience], notification_id: int) -> NotificationRead:
    found = session.execute(_visible(audiences).where(Notification.id == notification_id)).one_or_none()
    if found is None:  # another audience's notification is not the caller's to know about
        raise NotificationNotFound(f"no notification {notification_id} for the caller")
    notification, code = found
    if notification.read_at is None:
        session.execute(update(Notification).where(Notification.id == notification_id).values(read_at=utcnow()))
        session.refresh(notification)
    return _read(notification, code)


def _visible(audiences: Sequence[Audience]) -> Any:
    conditions: list[ColumnElement[bool]] = [
        and_(Notification.audience == held.name, Department.code == held.department)
        if held.department is not None
        else Notification.audience == held.name
        for held in audiences
    ]
    return (
        select(Notification, Department.code)
        .outerjoin(Department, Department.id == Notification.department_id)
        .where(or_(false(), *conditions))
    )


def _read(notification: Notification, department: str | None) -> NotificationRead:
    return NotificationRead(
        notification.id, department, notification.audience, notification.kind, notification.item_code,
        notification.subscription_id, notification.message, notification.detail, notification.created_at,
        notification.read_at,
    )  # fmt: skip
