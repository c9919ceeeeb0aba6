"""A small catalog with subscriptions and audit events whose utilisation figures are worked out by hand in the tests.

Departments (demo): psga provides PSGA-RK-0001 plus PSGA-X-0002 and PSGA-X-0003 (published) and PSGA-X-0004 (a
draft); scjg provides SCJG-FR-0001 (open data), zsj provides ZSJ-MS-0001."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import service as audit
from catalog.audit.models import AuditEvent
from catalog.departments.models import Department
from catalog.items.models import CatalogItem
from catalog.subscriptions.models import Subscription
from tests.catalog.helpers import import_demo

EXTRA = {"PSGA-X-0002": "published", "PSGA-X-0003": "published", "PSGA-X-0004": "draft"}
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def department_id(session: Session, code: str) -> int:
    return int(session.scalars(select(Department.id).where(Department.code == code)).one())


def item_id(session: Session, code: str) -> int:
    return int(session.scalars(select(CatalogItem.id).where(CatalogItem.code == code)).one())


def add_items(session: Session, now: datetime) -> None:
    psga = department_id(session, "psga")
    for code, status in EXTRA.items():
        session.add(CatalogItem(code=code, title=f"测试 {code}", department_id=psga, update_frequency="@daily",
                                sharing_type="conditional", status=status, level=2, quality={},
                                created_at=now - 400 * DAY, updated_at=now))  # fmt: skip
    session.flush()


def subscribe(session: Session, consumer: str, item: str, status: str, requested: datetime,
              active: datetime | None = None, expires: datetime | None = None) -> None:  # fmt: skip
    session.add(Subscription(item_id=item_id(session, item), consumer_department_id=department_id(session, consumer),
                             status=status, fields=["x"], purpose="test", legal_basis="test", period_days=30,
                             requested_by=f"user:{consumer}-user", requested_at=requested, active_from=active,
                             expires_at=expires))  # fmt: skip
    session.flush()


def use(session: Session, at: datetime, department: str | None, action: str, outcome: str, item: str,
        rows: int | None = None) -> None:  # fmt: skip
    principal = "anonymous" if department is None else f"user:{department}-user"
    values: dict[str, Any] = audit.event(principal, department, action, outcome, item_code=item, rows=rows)
    audit.write(session.connection(), {**values, "at": at})


def build(session: Session, now: datetime) -> None:
    import_demo(session)
    for item in session.scalars(select(CatalogItem)):
        item.created_at = now - 400 * DAY
    add_items(session, now)
    subscribe(session, "zsj", "PSGA-RK-0001", "active", now - 10 * DAY, now - 10 * DAY + 6 * HOUR, now + 30 * DAY)
    subscribe(session, "wjj", "PSGA-RK-0001", "active", now - 40 * DAY, now - 38 * DAY, now + 50 * DAY)
    subscribe(session, "wjj", "PSGA-X-0002", "active", now - 20 * DAY, now - 20 * DAY + 2 * HOUR, now - DAY)
    subscribe(session, "zsj", "PSGA-X-0003", "requested", now - 5 * DAY)
    subscribe(session, "scjg", "PSGA-X-0003", "rejected", now - 3 * DAY)
    subscribe(session, "psga", "ZSJ-MS-0001", "active", now - 2 * DAY, now - 2 * DAY + 10 * HOUR, now + 10 * DAY)
    use(session, now - DAY, "zsj", "data.read", "allowed", "PSGA-RK-0001", 100)
    use(session, now - 29 * DAY, "zsj", "data.read", "allowed", "PSGA-RK-0001", 50)  # the window's first day
    use(session, now - 30 * DAY, "zsj", "data.read", "allowed", "PSGA-RK-0001", 70)  # the day before the window
    use(session, now - 90 * DAY, "zsj", "data.read", "allowed", "PSGA-RK-0001", 70)
    use(session, now - DAY, "zsj", "data.read", "denied", "PSGA-RK-0001")
    use(session, now - 2 * DAY, "wjj", "data.verify", "allowed", "PSGA-RK-0001")
    use(session, now - 2 * DAY, "wjj", "data.verify", "denied", "PSGA-RK-0001")
    use(session, now - 3 * DAY, "wjj", "data.deliver", "done", "PSGA-RK-0001", 500)
    use(session, now - 3 * DAY, "wjj", "data.deliver", "failed", "PSGA-X-0002", 500)
    use(session, now - DAY, None, "data.read", "allowed", "SCJG-FR-0001", 10)
    use(session, now - 4 * DAY, "psga", "data.read", "allowed", "ZSJ-MS-0001", 5)
    use(session, now - DAY, "zsj", "subscription.request", "done", "PSGA-X-0003")
    use(session, now - DAY, "zsj", "data.read", "allowed", "PSGA-X-0004", 3)
    session.flush()


def events(session: Session) -> int:
    return len(session.scalars(select(AuditEvent.id)).all())
