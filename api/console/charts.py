"""The console's overview charts, drawn on the server as SVG (no script, no charting library): fields by level per
department, review progress per department, pipelines' freshness per department, and sharing activity (data reads
and subscription requests) per day over the last 30 days. The figures are counted at most once a minute per process:
over 200,000 fields a count is tens of milliseconds, and an overview need not be fresher."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.items.models import CatalogItem, ItemField
from catalog.ops.freshness import status_counts

WIDTH = 640  # the drawing's width in SVG units; it scales to the page
BAR = 18
GAP = 8
LABEL = 90  # room for a department's code left of its bar
DAYS = 30
COUNTED_FOR = 60.0


@dataclass(frozen=True)
class Segment:
    key: str
    count: int
    x: float
    width: float


@dataclass(frozen=True)
class Row:
    label: str
    y: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class StackedBars:
    """Horizontal bars, one per department, split by key (level, review state, freshness status)."""

    keys: list[str]
    rows: list[Row]
    height: float


@dataclass(frozen=True)
class Column:
    day: date
    x: float
    heights: dict[str, float]
    counts: dict[str, int]


@dataclass(frozen=True)
class Activity:
    columns: list[Column]
    peak: int
    height: float = 160.0
    column_width: float = (WIDTH - LABEL) / DAYS


CHARTS = ("levels", "review", "freshness", "activity")


@dataclass
class Overview:
    levels: StackedBars | None = None
    review: StackedBars | None = None
    freshness: StackedBars | None = None
    activity: Activity | None = None
    counted_at: Any = field(default_factory=utcnow)


def stacked(counts: dict[str, dict[str, int]], keys: list[str]) -> StackedBars:
    widest = max((sum(by_key.values()) for by_key in counts.values()), default=0) or 1
    scale = (WIDTH - LABEL - 60) / widest
    rows = []
    for index, (label, by_key) in enumerate(sorted(counts.items())):
        x, segments = float(LABEL), []
        for key in keys:
            count = by_key.get(key, 0)
            if count:
                segments.append(Segment(key, count, x, count * scale))
                x += count * scale
        rows.append(Row(label, index * (BAR + GAP), sum(by_key.values()), segments))
    return StackedBars(keys, rows, max(len(rows) * (BAR + GAP), BAR))


def activity(per_day: dict[str, dict[date, int]], today: date) -> Activity:
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    peak = max((sum(per_day[kind].get(day, 0) for kind in per_day) for day in days), default=0) or 1
    columns = []
    for index, day in enumerate(days):
        counts = {kind: per_day[kind].get(day, 0) for kind in per_day}
        heights = {kind: count * 150 / peak for kind, count in counts.items()}
        columns.append(Column(day, LABEL + index * Activity.column_width, heights, counts))
    return Activity(columns, peak)


def _fields_by(session: Session, column: Any) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    statement = (
        select(Department.code, column, func.count())
        .select_from(ItemField)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .join(Department, Department.id == CatalogItem.department_id)
        .group_by(Department.code, column)
    )
    for department, key, count in session.execute(statement):
        counts[department][str(key)] = int(count)
    return counts


def _per_day(session: Session, since: date, **where: str) -> dict[date, int]:
    day = func.date(AuditEvent.at)
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    statement = select(day, func.count()).where(AuditEvent.at >= start, *(
        getattr(AuditEvent, name) == value for name, value in where.items())).group_by(day)  # fmt: skip
    found: dict[date, int] = {}
    for when, count in session.execute(statement):
        found[when if isinstance(when, date) else date.fromisoformat(str(when))] = int(count)
    return found


def count(session: Session, shown: frozenset[str]) -> Overview:
    """The charts asked for (of ``CHARTS``), and only those: each is counted only for who may see it."""
    figures = Overview()
    if "levels" in shown:
        figures.levels = stacked(_fields_by(session, ItemField.level), ["1", "2", "3", "4"])
    if "review" in shown:
        figures.review = stacked(_fields_by(session, ItemField.review_status), ["approved", "pending"])
    if "freshness" in shown:
        freshness: dict[str, dict[str, int]] = defaultdict(dict)
        for department, status, number in status_counts(session):
            freshness[department][status] = number
        figures.freshness = stacked(freshness, ["on_time", "late", "overdue", "never_received"])
    if "activity" in shown:
        today = utcnow().date()
        since = today - timedelta(days=DAYS - 1)
        reads = _per_day(session, since, action="data.read", outcome="allowed")
        requests = _per_day(session, since, action="subscription.request", outcome="done")
        figures.activity = activity({"reads": reads, "requests": requests}, today)
    return figures


_lock = threading.Lock()
_kept: dict[tuple[int, frozenset[str]], tuple[float, Overview]] = {}


def overview(session: Session, shown: frozenset[str]) -> Overview:
    """The charts, counted again once they are a minute old (per database and set of charts), in the request's own
    transaction (a request never holds two connections)."""
    key = (id(session.get_bind()), shown)
    with _lock:
        kept = _kept.get(key)
        if kept and time.monotonic() - kept[0] < COUNTED_FOR:
            return kept[1]
    counted = count(session, shown)
    with _lock:
        _kept[key] = (time.monotonic(), counted)
    return counted
