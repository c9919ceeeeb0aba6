"""The raw material of the figures, read in the caller's transaction right after a fold: the uses in the window per
item and consumer department (rollup plus the events not yet folded), the items, the departments, the active
subscriptions and the requests made in the window."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import BigInteger, Date, Select, cast, func, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from catalog.departments.models import Department
from catalog.items.models import CatalogItem
from catalog.subscriptions.models import Subscription
from catalog.utilisation.fold import MEASURES, fold, uses_after, window_start
from catalog.utilisation.models import UsageDay, UsageMonth
from catalog.utilisation.schemas import Uses

Pair = tuple[str, str]  # (item code, consumer department code; '' without a department)


class Sum:
    """Uses added up (a plain object: tens of thousands are made per computation)."""

    __slots__ = ("values",)

    def __init__(self, values: list[int] | None = None) -> None:
        self.values = values if values is not None else [0, 0, 0, 0, 0]

    def add(self, other: Sum) -> None:
        mine, theirs = self.values, other.values
        mine[0] += theirs[0]
        mine[1] += theirs[1]
        mine[2] += theirs[2]
        mine[3] += theirs[3]
        mine[4] += theirs[4]

    @property
    def total(self) -> int:
        values = self.values
        return values[0] + values[2] + values[3]

    @property
    def rows(self) -> int:
        return self.values[1] + self.values[4]

    def uses(self) -> Uses:
        return Uses(**dict(zip(MEASURES, self.values, strict=True)))


@dataclass(frozen=True)
class Item:
    code: str
    title: str
    department: str
    published: bool
    created_at: datetime


@dataclass(frozen=True)
class Request:
    provider: str
    consumer: str
    outcome: str
    hours_to_active: float | None


@dataclass
class Material:
    now: datetime
    days: int
    since: date
    items: dict[str, Item]
    departments: dict[str, str]  # code -> name
    pairs: dict[Pair, Sum]
    subscribed: set[Pair]  # active subscriptions now, by item and consumer department
    requests: list[Request]
    by_item: dict[str, Sum] = field(default_factory=dict)  # item -> its uses by every consumer
    consumers: dict[str, list[tuple[str, Sum]]] = field(default_factory=dict)  # item -> (consumer, uses)
    by_consumer: dict[str, dict[str, Sum]] = field(default_factory=dict)  # consumer -> item -> uses
    by_provider: dict[str, list[Item]] = field(default_factory=dict)  # department -> its published items
    active_held: Counter[str] = field(default_factory=Counter)  # consumer -> its active subscriptions
    subscribed_items: set[str] = field(default_factory=set)  # items with an active subscription

    def __post_init__(self) -> None:
        by_item, consumers, by_consumer = self.by_item, self.consumers, self.by_consumer
        for (item, consumer), used in self.pairs.items():
            total = by_item.get(item)
            if total is None:
                by_item[item] = Sum(list(used.values))
                consumers[item] = [(consumer, used)]
            else:
                total.add(used)
                consumers[item].append((consumer, used))
            by_consumer.setdefault(consumer, {})[item] = used
        for entry in self.items.values():
            if entry.published:
                self.by_provider.setdefault(entry.department, []).append(entry)
        self.active_held.update(consumer for _, consumer in self.subscribed)
        self.subscribed_items.update(item for item, _ in self.subscribed)

    def published(self, department: str | None = None) -> list[Item]:
        if department is not None:
            return self.by_provider.get(department, [])
        return [item for item in self.items.values() if item.published]


def gather(session: Session, days: int, now: datetime, department: str | None = None) -> Material:
    """What the figures need; with ``department``, the uses of its items and by its people only."""
    folded_to = fold(session).folded_to
    since = window_start(now.date(), days)
    return Material(now=now, days=days, since=since, items=catalog_items(session),
                    departments=department_names(session), pairs=_pairs(session, since, folded_to, department),
                    subscribed=_subscribed(session, now),
                    requests=_requests(session, since, now))  # fmt: skip


def _window(session: Session, since: date, folded_to: int, department: str | None) -> Any:
    """Uses per day, item and consumer since ``since``: the rollup's rows and the live ones above the watermark."""
    rolled = select(UsageDay.day, UsageDay.item_code, UsageDay.department, *(getattr(UsageDay, name) for name in
                    MEASURES)).where(UsageDay.day >= since)  # fmt: skip
    live = uses_after(session, "day", folded_to).subquery()
    recent = select(*live.c).where(live.c.day >= since)
    if department is not None:
        own = (select(CatalogItem.code).join(Department, Department.id == CatalogItem.department_id)
               .where(Department.code == department))  # fmt: skip
        rolled = rolled.where(or_(UsageDay.item_code.in_(own), UsageDay.department == department))
        recent = recent.where(or_(live.c.item_code.in_(own), live.c.department == department))
    return union_all(rolled, recent).subquery()


def _pairs(session: Session, since: date, folded_to: int, department: str | None) -> dict[Pair, Sum]:
    uses = _window(session, since, folded_to, department)
    sums = (cast(func.sum(uses.c[name]), BigInteger) for name in MEASURES)  # integers, never decimals, come back
    statement: Select[Any] = select(uses.c.item_code, uses.c.department, *sums).group_by(uses.c.item_code,
                                                                                         uses.c.department)  # fmt: skip
    return {(item, department): Sum([reads, rows_read, verifications, deliveries, rows_delivered])
            for item, department, reads, rows_read, verifications, deliveries, rows_delivered
            in session.execute(statement)}  # fmt: skip


def month_pairs(session: Session, first_month: date) -> set[tuple[date, str]]:
    """(month, item) for every item used in a month since ``first_month``, folded or not."""
    folded_to = fold(session).folded_to
    live = uses_after(session, "month", folded_to).subquery()
    both = union_all(
        select(UsageMonth.month, UsageMonth.item_code).where(UsageMonth.month >= first_month),
        select(live.c.month.cast(Date), live.c.item_code).where(live.c.month >= first_month),
    ).subquery()
    statement = select(both.c.month, both.c.item_code).distinct()
    return {(_as_date(month), str(item)) for month, item in session.execute(statement)}


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def catalog_items(session: Session) -> dict[str, Item]:
    statement = select(CatalogItem.code, CatalogItem.title, Department.code, CatalogItem.status,
                       CatalogItem.created_at).join(Department, Department.id == CatalogItem.department_id)  # fmt: skip
    return {code: Item(code, title, department, status == "published", created)
            for code, title, department, status, created in session.execute(statement)}  # fmt: skip


def department_names(session: Session) -> dict[str, str]:
    return {code: name for code, name in session.execute(select(Department.code, Department.name_zh))}


def _subscribed(session: Session, now: datetime) -> set[Pair]:
    statement = (
        select(CatalogItem.code, Department.code)
        .select_from(Subscription)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .join(Department, Department.id == Subscription.consumer_department_id)
        .where(Subscription.status == "active", Subscription.expires_at > now)
    )
    return {(item, consumer) for item, consumer in session.execute(statement)}


def _requests(session: Session, since: date, now: datetime) -> list[Request]:
    provider, consumer = aliased(Department), aliased(Department)
    statement = (
        select(provider.code, consumer.code, Subscription.status, Subscription.expires_at, Subscription.requested_at,
               Subscription.active_from)
        .select_from(Subscription)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .join(provider, provider.id == CatalogItem.department_id)
        .join(consumer, consumer.id == Subscription.consumer_department_id)
        .where(Subscription.requested_at >= datetime.combine(since, time.min, tzinfo=UTC))
    )  # fmt: skip
    found = []
    for owner, asker, status, expires_at, requested_at, active_from in session.execute(statement):
        waited = (active_from - requested_at).total_seconds() / 3600 if active_from is not None else None
        found.append(Request(owner, asker, _outcome(status, expires_at, now), waited))
    return found


def _outcome(status: str, expires_at: datetime | None, now: datetime) -> str:
    if status in ("requested", "provider_approved"):
        return "pending"
    if status == "active" and expires_at is not None and expires_at <= now:
        return "expired"
    return status
