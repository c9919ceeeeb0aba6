"""Freshness: whether each pulled item's exports come as often as its declared update frequency says.

The platform's own view, from its own records (``item_feed``, written by the ingestion path), whatever Airflow
does or fails to do. The items concerned are those the pipelines pull: published, with a source system.

* The **schedule** is the item's update frequency (an Airflow preset or a 5-field cron), read in UTC as its DAG
  runs it. Its **period** is the interval between the two most recent scheduled times.
* The item is **due** an export at the first scheduled time after the last export it received (published,
  quarantined, or the same export again). An item that never received one expects its first from its publication.
* **Grace**: ``DATASHARE_FRESHNESS_GRACE_MINUTES`` (60), at most half the period (an hourly item is late within the
  hour, not after two). It absorbs a late scheduler, the pull's retries and a department dropping its file a little
  after the hour.
* **on_time** until the due time plus grace; then **late**; **overdue** once the scheduled time after the due one
  has passed too (plus grace): two exports missed in a row, which for a regular schedule is two periods after the
  last receipt. An item that never received an export is **never_received** instead of late or overdue.

Computing it for 10,000 items is one query, and croniter runs per distinct frequency, not per item: each
frequency's scheduled times around now are listed once and every item's due time is found by bisection.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import CroniterError, croniter
from sqlalchemy import ColumnElement, bindparam, case, func, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.access.service import department_id
from catalog.db import UTCDateTime, utcnow
from catalog.departments.models import Department, SourceSystem
from catalog.errors import NotFound
from catalog.ingest.manifest import PIPELINE_STATUSES
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemChange
from catalog.ops.models import ItemFeed
from catalog.ops.schemas import LATE_STATUSES as LATE_STATUSES  # the view's values, importable from here
from catalog.ops.schemas import STATUSES, FreshnessStatus, FreshnessSummary, ItemFreshness, StatusCounts
from catalog.settings import get_settings

# Airflow's presets (airflow.sdk.definitions.timetables._cron.CRON_PRESETS): croniter knows no @quarterly.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
LISTED_BEFORE = 5  # scheduled times listed per frequency before now: enough for items on time, late or overdue
CHUNK = 1_000  # ids per statement
# What decides an item's status (and where it is counted), in the order freshness_listing reads them.
_DECIDING_COLUMNS = ("id", "department", "update_frequency", "expected_since", "last_received_at")
log = logsafe.logger(__name__)
# A notification fires when an item enters a status at least as severe as the one last notified about.
SEVERITY = {FreshnessStatus.ON_TIME: 0, FreshnessStatus.LATE: 1, FreshnessStatus.OVERDUE: 2,
            FreshnessStatus.NEVER_RECEIVED: 2}  # fmt: skip


class ItemNotPulled(NotFound):
    code = "item_not_pulled"


@dataclass(frozen=True)
class _Assessed:
    item_id: int
    has_feed: bool
    notified: FreshnessStatus | None
    freshness: ItemFreshness


def item_freshness(
    session: Session,
    *,
    department: str | None = None,
    status: FreshnessStatus | str | None = None,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> list[ItemFreshness]:
    """Every pulled item's freshness (of one department, in one status), by department and item code. An unknown
    department is refused."""
    assessed = [entry.freshness for entry in _assess(session, department=department, now=now, grace=grace)]
    if not assessed and department is not None:
        department_id(session, department)  # refuses an unknown department
    wanted = None if status is None else FreshnessStatus(status)
    return [entry for entry in assessed if wanted is None or entry.status is wanted]


def freshness_of(
    session: Session, item_code: str, now: datetime | None = None, grace: timedelta | None = None
) -> ItemFreshness:
    """One item's freshness; an item that is not pulled (not published, or without a source system) has none."""
    found = _assess(session, item_code=item_code, now=now, grace=grace)
    if found:
        return found[0].freshness
    if session.scalar(select(CatalogItem.id).where(CatalogItem.code == item_code)) is None:
        raise ItemNotFound(item_code)
    raise ItemNotPulled(f"catalog item {item_code} is not pulled from a source system (published items with a "
                        "source system are): it has no freshness")  # fmt: skip


@dataclass(frozen=True)
class FreshnessListing:
    summary: FreshnessSummary  # every item of the scope counted, whatever the status asked for
    total: int  # the items in the status asked for
    items: list[ItemFreshness]  # those of the page, by department and item code


def freshness_listing(
    session: Session,
    *,
    department: str | None = None,
    status: FreshnessStatus | str | None = None,
    now: datetime | None = None,
    grace: timedelta | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> FreshnessListing:
    """The counts per department and status, and a page of the items in one status (or all), by department and item
    code. Every item's status is one comparison with its frequency's two thresholds, on the few columns that decide
    it; only the page's items are read whole and assessed. An unknown department is refused."""
    now = now or utcnow()
    schedules = _Schedules(now, _allowance(grace))
    wanted = None if status is None else FreshnessStatus(status)
    counted: defaultdict[str, Counter[FreshnessStatus]] = defaultdict(Counter)
    matching: list[int] = []
    deciding = _pulled_items(department, None, _DECIDING_COLUMNS)
    for item_id, code, frequency, since, received in session.execute(deciding):
        found = schedules[frequency].status_of(since, received)
        counted[code][found] += 1
        if wanted in (None, found):
            matching.append(item_id)
    if not counted and department is not None:
        department_id(session, department)  # refuses an unknown department
    overall = sum(counted.values(), Counter[FreshnessStatus]())
    summary = FreshnessSummary(now, _counts(None, overall), [_counts(c, n) for c, n in sorted(counted.items())])
    shown = matching[offset:] if limit is None else matching[offset : offset + limit]
    items = []
    for start in range(0, len(shown), CHUNK):
        whole = _pulled_items(department, None).where(CatalogItem.id.in_(shown[start : start + CHUNK]))
        items += [_classify(row, schedules[row.update_frequency], now) for row in session.execute(whole)]
    return FreshnessListing(summary, len(matching), items)


def summarize(items: Iterable[ItemFreshness], as_of: datetime) -> FreshnessSummary:
    """Counts per status, per department and over all ``items``."""
    by_department: dict[str, Counter[FreshnessStatus]] = {}
    for entry in items:
        by_department.setdefault(entry.department, Counter())[entry.status] += 1
    overall = sum(by_department.values(), Counter[FreshnessStatus]())
    departments = [_counts(code, counts) for code, counts in sorted(by_department.items())]
    return FreshnessSummary(as_of=as_of, overall=_counts(None, overall), departments=departments)


def summary(session: Session, now: datetime | None = None, grace: timedelta | None = None) -> FreshnessSummary:
    """Counts per department and platform-wide."""
    return freshness_listing(session, now=now, grace=grace, limit=0).summary


def status_counts(
    session: Session, now: datetime | None = None, grace: timedelta | None = None
) -> list[tuple[str, str, int]]:
    """(department, status, count) for every department with pulled items and every status, zeros included (a
    gauge goes back to 0 when its items are on time again)."""
    counted = summary(session, now, grace)
    return [
        (counts.department or "", status.value, getattr(counts, status.value))
        for counts in counted.departments
        for status in STATUSES
    ]


def record_transitions(
    session: Session, now: datetime | None = None, grace: timedelta | None = None
) -> list[ItemFreshness]:
    """The items that entered late, overdue or never_received since the status last notified about, which is
    updated (in the caller's transaction); an item back on time clears it. A caller notifies about what is
    returned: once per status in a lateness episode (late, then overdue), however often this runs, and once only
    when two callers run at the same time (the feed rows are locked and read again)."""
    assessed = [entry for entry in _assess(session, now=now, grace=grace) if _changes_notified(entry)]
    if not assessed:
        return []
    _make_feed_rows(session, [entry.item_id for entry in assessed if not entry.has_feed])
    current = _locked_notified(session, [entry.item_id for entry in assessed])
    entered: list[ItemFreshness] = []
    changes: list[dict[str, Any]] = []
    for entry in assessed:
        fresh = _Assessed(entry.item_id, True, current.get(entry.item_id), entry.freshness)
        if not _changes_notified(fresh):
            continue  # another caller got there first
        on_time = fresh.freshness.status is FreshnessStatus.ON_TIME
        changes.append({"feed_item": fresh.item_id, "notified": None if on_time else fresh.freshness.status.value,
                        "notified_time": None if on_time else fresh.freshness.as_of})  # fmt: skip
        if not on_time:
            entered.append(fresh.freshness)
    _set_notified(session, changes)
    if entered:
        log.info("freshness: %d item(s) entered late, overdue or never received", len(entered))
    return entered


# --- the assessment -----------------------------------------------------------------------------------------------


def _assess(
    session: Session,
    *,
    department: str | None = None,
    item_code: str | None = None,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> list[_Assessed]:
    now = now or utcnow()
    schedules = _Schedules(now, _allowance(grace))
    assessed = []
    for row in session.execute(_pulled_items(department, item_code)):
        freshness = _classify(row, schedules[row.update_frequency], now)
        notified = FreshnessStatus(row.notified_status) if row.notified_status else None
        assessed.append(_Assessed(row.id, row.feed_item_id is not None, notified, freshness))
    return assessed


def _allowance(grace: timedelta | None) -> timedelta:
    return grace if grace is not None else timedelta(minutes=get_settings().freshness_grace_minutes)


def _pulled_items(department: str | None, item_code: str | None, columns: Sequence[str] | None = None) -> Any:
    """One query: each pulled item with its department, source system and feed (or only the ``columns`` named)."""
    publication = (
        select(func.max(ItemChange.changed_at))
        .where(ItemChange.item_id == CatalogItem.id, ItemChange.action.in_(("created", "status")))
        .correlate(CatalogItem)
        .scalar_subquery()
    )  # the latest creation or status change of a published item is when it was published
    expected_since: ColumnElement[Any] = case(
        (ItemFeed.last_received_at.is_not(None), ItemFeed.last_received_at),
        else_=func.coalesce(publication, CatalogItem.created_at),
    )
    every = {
        "id": CatalogItem.id,
        "code": CatalogItem.code,
        "title": CatalogItem.title,
        "update_frequency": CatalogItem.update_frequency,
        "department": Department.code.label("department"),
        "source_system": SourceSystem.code.label("source_system"),
        "feed_item_id": ItemFeed.item_id.label("feed_item_id"),
        "last_received_at": ItemFeed.last_received_at,
        "last_published_at": ItemFeed.last_published_at,
        "last_checked_at": ItemFeed.last_checked_at,
        "last_check_outcome": ItemFeed.last_check_outcome,
        "notified_status": ItemFeed.notified_status,
        "expected_since": type_coerce(expected_since, UTCDateTime).label("expected_since"),
    }
    statement = (
        select(*(every.values() if columns is None else (every[name] for name in columns)))
        .select_from(CatalogItem)
        .join(Department, CatalogItem.department_id == Department.id)
        .join(SourceSystem, CatalogItem.source_system_id == SourceSystem.id)
        .outerjoin(ItemFeed, ItemFeed.item_id == CatalogItem.id)
        .where(CatalogItem.status.in_(PIPELINE_STATUSES))
        .order_by(Department.code, CatalogItem.code)
    )
    if department is not None:
        statement = statement.where(Department.code == department)
    if item_code is not None:
        statement = statement.where(CatalogItem.code == item_code)
    return statement


def _classify(row: Any, schedule: Schedule, now: datetime) -> ItemFreshness:
    since: datetime = row.expected_since
    due = schedule.next_after(since)
    status = schedule.status_of(since, row.last_received_at)
    return ItemFreshness(
        item=row.code, title=row.title, department=row.department, source_system=row.source_system,
        update_frequency=row.update_frequency, status=status, last_received_at=row.last_received_at,
        last_published_at=row.last_published_at, last_checked_at=row.last_checked_at,
        last_check_outcome=row.last_check_outcome, expected_since=since, due_at=due,
        late_since=None if due is None or status is FreshnessStatus.ON_TIME else due + schedule.grace, as_of=now,
    )  # fmt: skip


class Schedule:
    """An update frequency's scheduled times around one moment, listed once for every item on that frequency: the
    ``LISTED_BEFORE`` latest at or before it and the next. A moment outside them (an export older than that, an item
    published long ago) is computed on its own, and remembered (items imported together share their moment)."""

    def __init__(self, frequency: str, now: datetime) -> None:
        self.expression = CRON_PRESETS.get(frequency, frequency)
        self.now, self.grace = now, timedelta(0)
        self._limits: tuple[datetime, ...] | None = None  # found at the first status_of, once the grace is set
        self._outside: dict[datetime, datetime] = {}
        try:
            backward = croniter(self.expression, now + timedelta(microseconds=1))
            before_now = [backward.get_prev(datetime) for _ in range(LISTED_BEFORE)]  # at or before now, newest first
            following = croniter(self.expression, before_now[0]).get_next(datetime)
        except CroniterError:  # a valid expression that never fires (0 0 30 2 *): nothing is ever due
            self.period, self._times = timedelta(0), []
            return
        self.period = before_now[0] - before_now[1]
        self._times = [*reversed(before_now), following]

    def next_after(self, moment: datetime) -> datetime | None:
        """The first scheduled time after ``moment`` (None: the schedule never fires)."""
        if not self._times:
            return None
        if self._times[0] <= moment < self._times[-1]:
            return self._times[bisect_right(self._times, moment)]
        found = self._outside.get(moment)
        if found is None:
            found = self._outside[moment] = croniter(self.expression, moment).get_next(datetime)
        return found

    def status_of(self, since: datetime, received_at: datetime | None) -> FreshnessStatus:
        """The status of an item on this schedule expecting an export since ``since`` (set ``grace`` first): late
        once the first scheduled time after it is more than ``grace`` past, overdue once the next one is too; never
        received instead of either when no export ever came."""
        if self._limits is None:
            self._limits = self._limits_before(self.now - self.grace)
        if not self._limits or since >= self._limits[0]:
            return FreshnessStatus.ON_TIME
        if received_at is None:
            return FreshnessStatus.NEVER_RECEIVED
        return FreshnessStatus.OVERDUE if since < self._limits[1] else FreshnessStatus.LATE

    def _limits_before(self, cutoff: datetime) -> tuple[datetime, ...]:
        """The latest scheduled time before the cutoff (an item expecting an export since before it is late) and the
        one before (overdue); none for a schedule that never fires. Both are listed: the cutoff is now minus a grace
        of at most half the period between the two latest."""
        if not self._times:
            return ()
        listed = bisect_left(self._times, cutoff)
        return self._times[listed - 1], self._times[listed - 2]


class _Schedules(dict[str, Schedule]):
    """The schedule of each frequency met, made once, with its grace: the allowance, at most half its period."""

    def __init__(self, now: datetime, allowance: timedelta) -> None:
        super().__init__()
        self.now, self.allowance = now, allowance

    def __missing__(self, frequency: str) -> Schedule:
        schedule = self[frequency] = Schedule(frequency, self.now)
        schedule.grace = min(self.allowance, schedule.period / 2)
        return schedule


def _counts(department: str | None, counts: Counter[FreshnessStatus]) -> StatusCounts:
    return StatusCounts(department=department, total=sum(counts.values()),
                        **{status.value: counts[status] for status in STATUSES})  # fmt: skip


# --- notified status ----------------------------------------------------------------------------------------------


def _changes_notified(entry: _Assessed) -> bool:
    """Whether the item's notified status must change: cleared when back on time, set when it entered a status
    at least as severe as the one last notified about."""
    status, notified = entry.freshness.status, entry.notified
    if status is FreshnessStatus.ON_TIME:
        return notified is not None
    return status is not notified and (notified is None or SEVERITY[status] >= SEVERITY[notified])


def _make_feed_rows(session: Session, item_ids: Sequence[int]) -> None:
    if not item_ids:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ItemFeed).on_conflict_do_nothing(index_elements=[ItemFeed.item_id])
    session.connection().execute(statement, [{"item_id": item_id} for item_id in item_ids])


def _locked_notified(session: Session, item_ids: Sequence[int]) -> dict[int, FreshnessStatus | None]:
    """The notified status of these items' feeds, read again with their rows locked (in id order)."""
    current: dict[int, FreshnessStatus | None] = {}
    ordered = sorted(item_ids)
    for start in range(0, len(ordered), CHUNK):
        statement = (
            select(ItemFeed.item_id, ItemFeed.notified_status)
            .where(ItemFeed.item_id.in_(ordered[start : start + CHUNK]))
            .order_by(ItemFeed.item_id)
            .with_for_update()
        )
        for item_id, notified in session.execute(statement):
            current[item_id] = FreshnessStatus(notified) if notified else None
    return current


def _set_notified(session: Session, changes: list[dict[str, Any]]) -> None:
    if not changes:
        return
    statement = (
        update(ItemFeed)
        .where(ItemFeed.item_id == bindparam("feed_item"))
        .values(notified_status=bindparam("notified"), notified_at=bindparam("notified_time", type_=UTCDateTime))
    )
    session.connection().execute(statement, changes)
