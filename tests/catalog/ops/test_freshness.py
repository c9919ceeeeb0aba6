"""Freshness on both backends: each status by a fixed clock for an hourly, a daily (@daily) and a cron schedule, the
grace capped at half a period, items never received measured from their publication, filters, counts, and the
notified status that makes a late notification fire once per episode."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.access.service import UnknownDepartment
from catalog.db import make_engine, session_scope
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemChange
from catalog.ops import feeds
from catalog.ops.freshness import (
    ItemNotPulled,
    Schedule,
    freshness_listing,
    freshness_of,
    item_freshness,
    record_transitions,
    status_counts,
    summarize,
    summary,
)
from catalog.ops.models import ItemFeed
from catalog.ops.schemas import FreshnessStatus
from tests.catalog.helpers import import_demo

HOURLY, DAILY, CRON = "ZSJ-MS-0001", "SCJG-FR-0001", "PSGA-RK-0001"  # 0 * * * *, @daily, 0 2 * * *
GRACE = timedelta(minutes=60)
ON_TIME, LATE, OVERDUE, NEVER = (FreshnessStatus.ON_TIME, FreshnessStatus.LATE, FreshnessStatus.OVERDUE,
                                 FreshnessStatus.NEVER_RECEIVED)  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def published_at(session: Session, code: str, moment: datetime) -> None:
    """As if the item had been published at this moment (its creation or last status change)."""
    item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == code))
    session.execute(update(ItemChange).where(ItemChange.item_id == item_id).values(changed_at=moment))


@pytest.mark.parametrize(
    ("code", "received", "now", "status", "due", "late_since"),
    [
        # hourly: due on the next hour; grace capped at half the period (30 minutes); overdue after the second hour.
        (HOURLY, "2026-12-01 10:05", "2026-12-01 11:30", ON_TIME, "2026-12-01 11:00", None),
        (HOURLY, "2026-12-01 10:05", "2026-12-01 11:31", LATE, "2026-12-01 11:00", "2026-12-01 11:30"),
        (HOURLY, "2026-12-01 10:05", "2026-12-01 12:30", LATE, "2026-12-01 11:00", "2026-12-01 11:30"),
        (HOURLY, "2026-12-01 10:05", "2026-12-01 12:31", OVERDUE, "2026-12-01 11:00", "2026-12-01 11:30"),
        (HOURLY, "2026-12-01 11:00", "2026-12-01 11:40", ON_TIME, "2026-12-01 12:00", None),  # received on the hour
        # @daily: due at midnight, an hour's grace.
        (DAILY, "2026-12-01 00:10", "2026-12-02 01:00", ON_TIME, "2026-12-02 00:00", None),
        (DAILY, "2026-12-01 00:10", "2026-12-02 01:01", LATE, "2026-12-02 00:00", "2026-12-02 01:00"),
        (DAILY, "2026-12-01 00:10", "2026-12-03 01:00", LATE, "2026-12-02 00:00", "2026-12-02 01:00"),
        (DAILY, "2026-12-01 00:10", "2026-12-03 01:01", OVERDUE, "2026-12-02 00:00", "2026-12-02 01:00"),
        # 0 2 * * *: due at two in the morning.
        (CRON, "2026-12-01 02:03", "2026-12-01 23:59", ON_TIME, "2026-12-02 02:00", None),
        (CRON, "2026-12-01 01:59", "2026-12-01 03:01", LATE, "2026-12-01 02:00", "2026-12-01 03:00"),
        (CRON, "2026-12-01 02:03", "2026-12-02 03:01", LATE, "2026-12-02 02:00", "2026-12-02 03:00"),
        (CRON, "2026-12-01 02:03", "2026-12-03 03:01", OVERDUE, "2026-12-02 02:00", "2026-12-02 03:00"),
        (CRON, "2026-11-01 02:03", "2026-12-03 03:01", OVERDUE, "2026-11-02 02:00", "2026-11-02 03:00"),
    ],
)
def test_each_status_by_a_fixed_clock(
    demo: Session, code: str, received: str, now: str, status: FreshnessStatus, due: str, late_since: str | None
) -> None:
    feeds.record(demo, code, feeds.PUBLISHED, at=at(received))

    found = freshness_of(demo, code, now=at(now), grace=GRACE)

    assert (found.status, found.due_at) == (status, at(due))
    assert found.late_since == (None if late_since is None else at(late_since))
    assert found.last_received_at == found.last_published_at == found.expected_since == at(received)
    # the database counts and pages by the same rule: every item's status, each status's items
    every = item_freshness(demo, now=at(now), grace=GRACE)
    for wanted in (None, *FreshnessStatus):
        listed = freshness_listing(demo, status=wanted, now=at(now), grace=GRACE)
        assert listed.items == [entry for entry in every if wanted in (None, entry.status)], wanted
        assert listed.total == len(listed.items) and listed.summary == summarize(every, at(now))


def test_an_item_never_received_is_measured_from_its_publication(demo: Session) -> None:
    published_at(demo, HOURLY, at("2026-12-01 09:30"))

    awaiting = freshness_of(demo, HOURLY, now=at("2026-12-01 10:30"), grace=GRACE)
    assert (awaiting.status, awaiting.due_at, awaiting.last_received_at) == (ON_TIME, at("2026-12-01 10:00"), None)
    assert awaiting.expected_since == at("2026-12-01 09:30")
    for now in ("2026-12-01 10:31", "2026-12-01 12:31", "2026-12-30 00:00"):  # never late or overdue: never received
        assert freshness_of(demo, HOURLY, now=at(now), grace=GRACE).status is NEVER

    feeds.record(demo, HOURLY, feeds.NO_EXPORT, at=at("2026-12-01 11:00"))  # a check that found nothing
    checked = freshness_of(demo, HOURLY, now=at("2026-12-01 11:01"), grace=GRACE)
    assert (checked.status, checked.last_checked_at, checked.last_check_outcome) == (
        NEVER, at("2026-12-01 11:00"), "no_export")  # fmt: skip


def test_the_grace_comes_from_the_settings_and_is_at_most_half_a_period(
    demo: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog.settings import get_settings

    feeds.record(demo, DAILY, feeds.DUPLICATE, at=at("2026-12-01 00:10"))
    feeds.record(demo, HOURLY, feeds.DUPLICATE, at=at("2026-12-01 10:05"))
    monkeypatch.setenv("DATASHARE_FRESHNESS_GRACE_MINUTES", "180")
    get_settings.cache_clear()
    try:
        assert freshness_of(demo, DAILY, now=at("2026-12-02 02:59")).status is ON_TIME
        assert freshness_of(demo, DAILY, now=at("2026-12-02 03:01")).status is LATE
        assert freshness_of(demo, HOURLY, now=at("2026-12-01 11:31")).status is LATE  # 30 minutes, not 180
    finally:
        get_settings.cache_clear()
    assert freshness_of(demo, DAILY, now=at("2026-12-02 00:01"), grace=timedelta(0)).status is LATE


def test_outcomes_of_the_ingestion_path_move_the_feed(demo: Session) -> None:
    feeds.record(demo, HOURLY, feeds.PUBLISHED, at=at("2026-12-01 10:00"))
    feeds.record(demo, HOURLY, feeds.QUARANTINED, at=at("2026-12-01 11:00"))
    feeds.record(demo, HOURLY, feeds.FAILED, at=at("2026-12-01 12:00"))
    found = freshness_of(demo, HOURLY, now=at("2026-12-01 12:10"), grace=GRACE)
    assert (found.last_received_at, found.last_published_at) == (at("2026-12-01 11:00"), at("2026-12-01 10:00"))
    assert (found.last_checked_at, found.last_check_outcome) == (at("2026-12-01 12:00"), "failed")

    feeds.record(demo, HOURLY, feeds.RELEASED, at=at("2026-12-01 12:20"))  # an operator's decision: not a pull
    found = freshness_of(demo, HOURLY, now=at("2026-12-01 12:30"), grace=GRACE)
    assert (found.last_published_at, found.last_checked_at) == (at("2026-12-01 12:20"), at("2026-12-01 12:00"))
    with pytest.raises(ValueError, match="not an outcome"):
        feeds.record(demo, HOURLY, "discarded")


def test_filters_by_department_and_status_and_counts(demo: Session) -> None:
    now = at("2026-12-03 12:00")
    feeds.record(demo, HOURLY, feeds.PUBLISHED, at=at("2026-12-03 11:10"))  # on time
    feeds.record(demo, DAILY, feeds.PUBLISHED, at=at("2026-12-02 00:10"))  # late since 01:00
    published_at(demo, CRON, at("2026-12-01 12:00"))  # never received

    assert [(entry.item, entry.status) for entry in item_freshness(demo, now=now, grace=GRACE)] == [
        (CRON, NEVER),
        (DAILY, LATE),
        (HOURLY, ON_TIME),
    ]  # fmt: skip  (by department: psga, scjg, zsj)
    assert [entry.item for entry in item_freshness(demo, department="scjg", now=now, grace=GRACE)] == [DAILY]
    assert [entry.item for entry in item_freshness(demo, status="late", now=now, grace=GRACE)] == [DAILY]
    assert item_freshness(demo, department="wjj", now=now) == []  # a department that provides nothing pulled
    with pytest.raises(UnknownDepartment):
        item_freshness(demo, department="nowhere", now=now)

    counted = summary(demo, now, GRACE)
    assert (counted.overall.total, counted.overall.on_time, counted.overall.late, counted.overall.never_received) == (
        3, 1, 1, 1)  # fmt: skip
    assert [(counts.department, counts.total) for counts in counted.departments] == [
        ("psga", 1), ("scjg", 1), ("zsj", 1)]  # fmt: skip
    paged = freshness_listing(demo, now=now, grace=GRACE, limit=1, offset=1)
    assert ([entry.item for entry in paged.items], paged.total, paged.summary) == ([DAILY], 3, counted)
    late = freshness_listing(demo, department="scjg", status=LATE, now=now, grace=GRACE, limit=5)
    assert ([entry.item for entry in late.items], late.total, late.summary.overall.total) == ([DAILY], 1, 1)
    with pytest.raises(UnknownDepartment):
        freshness_listing(demo, department="nowhere", now=now)
    counts = status_counts(demo, now, GRACE)
    assert len(counts) == 12  # three departments by four statuses, zeros included
    assert {("scjg", "late", 1), ("scjg", "on_time", 0), ("psga", "never_received", 1)} <= set(counts)


def test_only_pulled_items_have_a_freshness(demo: Session) -> None:
    demo.execute(update(CatalogItem).where(CatalogItem.code == DAILY).values(status="retired"))

    assert [entry.item for entry in item_freshness(demo)] == [CRON, HOURLY]
    with pytest.raises(ItemNotPulled):
        freshness_of(demo, DAILY)
    with pytest.raises(ItemNotFound):
        freshness_of(demo, "NO-SUCH-ITEM")


def test_record_transitions_fires_once_per_status_in_an_episode(demo: Session) -> None:
    feeds.record(demo, DAILY, feeds.PUBLISHED, at=at("2026-12-01 00:10"))
    feeds.record(demo, HOURLY, feeds.PUBLISHED, at=at("2026-12-02 01:10"))
    feeds.record(demo, CRON, feeds.PUBLISHED, at=at("2026-12-02 02:10"))

    def transitions(now: str) -> list[tuple[str, FreshnessStatus]]:
        return [(entry.item, entry.status) for entry in record_transitions(demo, at(now), GRACE)]

    assert transitions("2026-12-02 01:30") == [(DAILY, LATE)]
    assert transitions("2026-12-02 01:40") == []  # still late: notified already
    assert transitions("2026-12-03 03:30") == [(CRON, LATE), (DAILY, OVERDUE), (HOURLY, OVERDUE)]  # worse: again
    assert transitions("2026-12-03 03:40") == []
    notified = demo.execute(select(ItemFeed.notified_status, ItemFeed.notified_at)).all()
    assert sorted(notified) == [("late", at("2026-12-03 03:30")), ("overdue", at("2026-12-03 03:30")),
                                ("overdue", at("2026-12-03 03:30"))]  # fmt: skip

    feeds.record(demo, DAILY, feeds.DUPLICATE, at=at("2026-12-03 03:45"))  # the same export again: on time
    assert transitions("2026-12-03 03:50") == []  # back on time: cleared, nothing to notify
    daily_id = demo.scalar(select(CatalogItem.id).where(CatalogItem.code == DAILY))
    assert demo.get_one(ItemFeed, daily_id, populate_existing=True).notified_status is None
    assert transitions("2026-12-04 01:30") == [(DAILY, LATE)]  # a new episode notifies again


def test_record_transitions_notes_items_that_never_had_a_feed(demo: Session) -> None:
    for code in (HOURLY, DAILY, CRON):
        published_at(demo, code, at("2026-11-01 00:00"))
    assert demo.scalar(select(ItemFeed.item_id)) is None

    entered = record_transitions(demo, at("2026-12-01 00:00"), GRACE)

    assert sorted((entry.item, entry.status) for entry in entered) == [(CRON, NEVER), (DAILY, NEVER), (HOURLY, NEVER)]
    assert record_transitions(demo, at("2026-12-01 01:00"), GRACE) == []


def test_a_schedule_lists_its_times_once_and_reaches_back_beyond_them() -> None:
    now = at("2026-12-01 10:20")
    hourly = Schedule("@hourly", now)
    assert hourly.period == timedelta(hours=1)
    assert hourly.next_after(at("2026-12-01 10:00")) == at("2026-12-01 11:00")
    assert hourly.next_after(at("2026-11-30 23:59")) == at("2026-12-01 00:00")
    assert hourly.next_after(at("2025-01-01 00:30")) == at("2025-01-01 01:00")  # older than the listed times
    assert hourly.next_after(at("2026-12-05 00:30")) == at("2026-12-05 01:00")  # after them (a clock behind)
    assert Schedule("@quarterly", now).next_after(now) == at("2027-01-01 00:00")  # Airflow's preset
    weekdays = Schedule("0 9 * * 1-5", at("2026-12-07 10:00"))  # a Monday: the period before it is the weekend's
    assert weekdays.period == timedelta(days=3)
    assert weekdays.next_after(at("2026-12-04 09:05")) == at("2026-12-07 09:00")


def test_two_callers_at_once_notify_once(backend: str, database_factory: Any) -> None:
    """The second caller waits for the first's row locks (SQLite: its write lock), then finds the items notified."""
    engine = make_engine(database_factory(backend))
    with session_scope(engine) as session:
        import_demo(session)
        for code in (HOURLY, DAILY, CRON):
            feeds.record(session, code, feeds.PUBLISHED, at=at("2026-11-01 00:00"))
    now = at("2026-12-01 00:00")
    first_done, results = threading.Event(), {}

    def first() -> None:
        with session_scope(engine) as session:
            results["first"] = record_transitions(session, now, GRACE)
            first_done.set()
            time.sleep(0.5)  # holds its locks a while before it commits

    def second() -> None:
        first_done.wait(10)
        with session_scope(engine) as session:
            results["second"] = record_transitions(session, now, GRACE)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    engine.dispose()
    assert sorted(entry.item for entry in results["first"]) == [CRON, DAILY, HOURLY]
    assert results["second"] == []


def test_a_schedule_that_never_fires_leaves_nothing_due(demo: Session) -> None:
    demo.execute(update(CatalogItem).where(CatalogItem.code == HOURLY).values(update_frequency="0 0 30 2 *"))
    feeds.record(demo, HOURLY, feeds.PUBLISHED, at=at("2026-11-01 00:00"))

    found = freshness_of(demo, HOURLY, now=at("2026-12-01 00:00"), grace=GRACE)

    assert (found.status, found.due_at, found.late_since, found.export_due) == (ON_TIME, None, None, False)
    assert len(item_freshness(demo, now=at("2026-12-01 00:00"))) == 3  # the others are assessed as ever
