"""The utilisation figures, for the platform and per department (definitions: bench/UTILISATION_README_SECTION.md,
merged into the README). Who may know which consumer of an item is the caller's rule, passed as ``may_know``."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.errors import NotFound
from catalog.utilisation.gather import Item, Material, Request, Sum, gather
from catalog.utilisation.schemas import (
    REQUEST_OUTCOMES,
    ConsumerFigures,
    ConsumerUse,
    DepartmentFigures,
    DepartmentUtilisation,
    ItemUse,
    PerItem,
    PlatformUtilisation,
    ProviderFigures,
    Requests,
)

MayKnow = Callable[[str, str], bool]  # (consumer, provider) -> whether the caller may know of their subscription
MAX_DAYS = 366
MAX_TOP = 100


def platform(session: Session, may_know: MayKnow, days: int = 30, top: int = 10,
             now: datetime | None = None) -> PlatformUtilisation:  # fmt: skip
    """Every department's figures and the platform's, with the most used items."""
    found = gather(session, days, now or utcnow())
    departments = [_department(found, code) for code in sorted(found.departments)]
    everything = _provider(found, found.published(), found.requests)
    return PlatformUtilisation(as_of=found.now, days=days, since=found.since, platform=everything,
                               departments=departments,
                               top_items=_top(found, found.published(), may_know, top))  # fmt: skip


def department(session: Session, code: str, may_know: MayKnow, days: int = 30, top: int = 10,
               now: datetime | None = None) -> DepartmentUtilisation:  # fmt: skip
    """One department's figures as provider and as consumer, its most used items and the items it used most."""
    found = gather(session, days, now or utcnow(), code)
    if code not in found.departments:
        raise NotFound(f"there is no department {code}")
    own = sorted(found.published(code), key=lambda item: item.code)
    used = found.by_consumer.get(code, {})
    used_items = [found.items[item] for item in used if item in found.items]
    top_used = sorted(used_items, key=lambda item: _rank(used[item.code], item))[:top]
    return DepartmentUtilisation(
        as_of=found.now, days=days, since=found.since, figures=_department(found, code),
        top_items=_top(found, own, may_know, top), items=[_item_use(found, item, may_know) for item in own],
        top_used=[_item_use(found, item, may_know, only=code) for item in top_used],
    )  # fmt: skip


def _department(found: Material, code: str) -> DepartmentFigures:
    provided = [request for request in found.requests if request.provider == code]
    made = [request for request in found.requests if request.consumer == code]
    return DepartmentFigures(department=code, name=found.departments[code],
                             as_provider=_provider(found, found.published(code), provided),
                             as_consumer=_consumer(found, code, made))  # fmt: skip


def _provider(found: Material, published: list[Item], requests: list[Request]) -> ProviderFigures:
    codes = {item.code for item in published}
    subscribed = codes & found.subscribed_items
    uses = Sum()
    for code in codes:
        if code in found.by_item:
            uses.add(found.by_item[code])
    used = {code for code in codes if code in found.by_item and found.by_item[code].total}
    count = len(codes)
    reads, _, verifications, deliveries, _ = uses.values
    per_item = PerItem(reads=_ratio(reads, count) or 0.0, rows=_ratio(uses.rows, count) or 0.0,
                       deliveries=_ratio(deliveries, count) or 0.0,
                       verifications=_ratio(verifications, count) or 0.0)  # fmt: skip
    return ProviderFigures(published_items=count, subscribed_items=len(subscribed),
                           share_subscribed=_ratio(len(subscribed), count), used_items=len(used),
                           share_used=_ratio(len(used), count), uses=uses.uses(), per_item=per_item,
                           requests=_requests(requests))  # fmt: skip


def _consumer(found: Material, code: str, requests: list[Request]) -> ConsumerFigures:
    used = found.by_consumer.get(code, {})
    uses = Sum()
    for item_uses in used.values():
        uses.add(item_uses)
    active = found.active_held[code]
    return ConsumerFigures(active_subscriptions=active, items_used=sum(1 for item in used.values() if item.total),
                           uses=uses.uses(), requests=_requests(requests))  # fmt: skip


def _requests(requests: Iterable[Request]) -> Requests:
    requests = list(requests)
    outcomes = dict.fromkeys(REQUEST_OUTCOMES, 0)
    for request in requests:
        outcomes[request.outcome] = outcomes.get(request.outcome, 0) + 1
    waits = [request.hours_to_active for request in requests if request.hours_to_active is not None]
    median = round(statistics.median(waits), 3) if waits else None
    return Requests(made=len(requests), outcomes=outcomes, became_active=len(waits), median_hours_to_active=median)


def _top(found: Material, items: list[Item], may_know: MayKnow, top: int) -> list[ItemUse]:
    used = [item for item in items if item.code in found.by_item and found.by_item[item.code].total]
    ranked = sorted(used, key=lambda item: _rank(found.by_item[item.code], item))
    return [_item_use(found, item, may_know) for item in ranked[:top]]


def _rank(uses: Sum, item: Item) -> tuple[int, int, str]:
    return -uses.total, -uses.rows, item.code


def _item_use(found: Material, item: Item, may_know: MayKnow, only: str | None = None) -> ItemUse:
    """An item's uses in the window (by every consumer, or by ``only``) and its consumers the caller may know of."""
    consumers = [(consumer, uses) for consumer, uses in found.consumers.get(item.code, [])
                 if uses.total and only in (None, consumer)]  # fmt: skip
    consumers.sort(key=lambda pair: (-pair[1].total, -pair[1].rows, pair[0]))
    total = Sum()
    for _, uses in consumers:
        total.add(uses)
    shown = [ConsumerUse(department=consumer or None, uses=uses.uses())
             for consumer, uses in consumers if may_know(consumer, item.department)]  # fmt: skip
    return ItemUse(item=item.code, title=item.title, department=item.department, uses=total.uses(), consumers=shown)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
