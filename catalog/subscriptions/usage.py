"""Who uses an item: the departments with an active subscription to it, and its current version (number, rows, when
published). Read for the item's page; who may see which subscriber is the caller's to decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.ingest.models import ItemVersion
from catalog.items.models import CatalogItem
from catalog.subscriptions.models import Subscription


@dataclass(frozen=True)
class Subscriber:
    subscription: int
    consumer: str  # the department's code
    expires_at: datetime | None


@dataclass(frozen=True)
class CurrentVersion:
    number: int
    row_count: int
    published_at: datetime


def subscribers(session: Session, item_code: str) -> list[Subscriber]:
    """The item's active subscriptions, by consumer department."""
    rows = session.execute(
        select(Subscription.id, Department.code, Subscription.expires_at)
        .join(Department, Department.id == Subscription.consumer_department_id)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .where(CatalogItem.code == item_code, Subscription.status == "active", Subscription.expires_at > utcnow())
        .order_by(Department.code, Subscription.id)
    )
    return [Subscriber(*row) for row in rows]


def current_version(session: Session, item_code: str) -> CurrentVersion | None:
    row = session.execute(
        select(ItemVersion.number, ItemVersion.row_count, ItemVersion.published_at)
        .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
        .where(CatalogItem.code == item_code)
    ).one_or_none()
    return None if row is None else CurrentVersion(*row)
