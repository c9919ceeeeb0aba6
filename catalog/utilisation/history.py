"""Utilisation over time: per department and calendar month (UTC), the share of its published items used."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, time

from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.errors import NotFound
from catalog.utilisation.gather import catalog_items, department_names, month_pairs
from catalog.utilisation.schemas import DepartmentHistory, Period, UtilisationHistory

MAX_MONTHS = 36


def months_back(today: date, months: int) -> list[date]:
    """The first days of the ``months`` calendar months that end with this one, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date((index - back) // 12, (index - back) % 12 + 1, 1) for back in range(months - 1, -1, -1)]


def _month_end(month: date) -> datetime:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return datetime.combine(following, time.min, tzinfo=UTC)


def history(session: Session, departments: Iterable[str] | None, months: int = 12,
            now: datetime | None = None) -> UtilisationHistory:  # fmt: skip
    """Per month, each department's items published now that existed by the month's end, and how many of those were
    read, verified against or delivered in the month. ``departments``: those asked for (None: every one)."""
    now = now or utcnow()
    periods = months_back(now.date(), months)
    names = department_names(session)
    wanted = sorted(names) if departments is None else sorted(departments)
    for code in wanted:
        if code not in names:
            raise NotFound(f"there is no department {code}")
    items = [item for item in catalog_items(session).values() if item.published and item.department in wanted]
    owner = {item.code: item.department for item in items}
    used = Counter((owner[code], month) for month, code in month_pairs(session, periods[0]) if code in owner)
    found = []
    for code in wanted:
        own = [item for item in items if item.department == code]
        series = []
        for month in periods:
            existing = sum(1 for item in own if item.created_at < _month_end(month))
            count = used[(code, month)]
            series.append(Period(month=month, published_items=existing, used_items=count,
                                 share_used=round(count / existing, 4) if existing else None))  # fmt: skip
        found.append(DepartmentHistory(department=code, name=names[code], periods=series))
    return UtilisationHistory(as_of=now, months=months, departments=found)
