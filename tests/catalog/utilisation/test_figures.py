"""The utilisation figures over a small fixture whose every figure is worked out by hand (fixture.py): uses only
allowed reads and verifications and done deliveries, within the 30-day window, of published items; denied reads,
failed deliveries, other actions and older events count nowhere."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.errors import NotFound
from catalog.utilisation import figures, history
from catalog.utilisation.models import UsageDay, UsageMonth
from catalog.utilisation.schemas import PlatformUtilisation
from tests.catalog.utilisation.fixture import DAY, build, use


def everyone(consumer: str, provider: str) -> bool:
    return True


@pytest.fixture
def now(session: Session) -> datetime:
    moment = utcnow().replace(hour=12)  # noon: "29 days ago" is the window's first day whatever the clock says
    build(session, moment)
    return moment


def test_the_platform_figures(session: Session, now: datetime) -> None:
    found = figures.platform(session, everyone, now=now)
    assert (found.days, found.since) == (30, now.date() - timedelta(days=29))
    whole = found.platform
    assert (whole.published_items, whole.subscribed_items, whole.used_items) == (5, 2, 3)
    assert (whole.share_subscribed, whole.share_used) == (0.4, 0.6)
    assert whole.uses.model_dump() == {"reads": 4, "rows_read": 165, "verifications": 1, "deliveries": 1,
                                       "rows_delivered": 500}  # fmt: skip
    assert whole.per_item.model_dump() == {"reads": 0.8, "rows": 133.0, "deliveries": 0.2, "verifications": 0.2}
    assert [item.item for item in found.top_items] == ["PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"]
    population = found.top_items[0]
    assert population.uses.model_dump() == {"reads": 2, "rows_read": 150, "verifications": 1, "deliveries": 1,
                                            "rows_delivered": 500}  # fmt: skip
    assert [(consumer.department, consumer.uses.reads) for consumer in population.consumers] == [("wjj", 0),
                                                                                               ("zsj", 2)]  # fmt: skip
    assert [consumer.department for consumer in found.top_items[1].consumers] == [None]  # anonymous open data
    assert whole.requests.made == 5  # every request in the window, whoever provides
    assert whole.requests.outcomes == {"pending": 1, "active": 2, "rejected": 1, "revoked": 0, "expired": 1}


def test_a_department_as_provider(session: Session, now: datetime) -> None:
    psga = figures.department(session, "psga", everyone, now=now).figures.as_provider
    assert (psga.published_items, psga.subscribed_items, psga.used_items) == (3, 1, 1)
    assert (psga.share_subscribed, psga.share_used) == (0.3333, 0.3333)
    assert psga.uses.model_dump() == {"reads": 2, "rows_read": 150, "verifications": 1, "deliveries": 1,
                                      "rows_delivered": 500}  # the draft's read is not the provider's  # fmt: skip
    assert psga.per_item.model_dump() == {"reads": 0.6667, "rows": 216.6667, "deliveries": 0.3333,
                                          "verifications": 0.3333}  # fmt: skip
    # S1 (6 hours to active), S3 (2 hours, expired since), a pending one, a rejected one; S2 was asked 40 days ago.
    assert psga.requests.model_dump() == {"made": 4, "became_active": 2, "median_hours_to_active": 4.0,
                                          "outcomes": {"pending": 1, "active": 1, "rejected": 1, "revoked": 0,
                                                       "expired": 1}}  # fmt: skip


def test_departments_as_consumers(session: Session, now: datetime) -> None:
    found = {entry.department: entry.as_consumer for entry in figures.platform(session, everyone, now=now).departments}
    zsj, wjj = found["zsj"], found["wjj"]
    assert (zsj.active_subscriptions, zsj.items_used, zsj.uses.reads, zsj.uses.rows_read) == (1, 2, 3, 153)
    # S1 (active 6 hours after it was asked for) and the pending request for PSGA-X-0003.
    assert (zsj.requests.made, zsj.requests.outcomes["pending"], zsj.requests.median_hours_to_active) == (2, 1, 6.0)
    assert (wjj.active_subscriptions, wjj.items_used) == (1, 1)  # its second subscription ended yesterday
    assert wjj.uses.model_dump() == {"reads": 0, "rows_read": 0, "verifications": 1, "deliveries": 1,
                                     "rows_delivered": 500}  # fmt: skip
    assert (wjj.requests.made, wjj.requests.outcomes["expired"], wjj.requests.median_hours_to_active) == (1, 1, 2.0)
    nothing = {entry.department: entry for entry in figures.platform(session, everyone, now=now).departments}["mljd"]
    assert nothing.as_consumer.uses.total == 0 and nothing.as_provider.share_used is None


def test_a_wider_window_takes_in_older_uses(session: Session, now: datetime) -> None:
    psga = figures.department(session, "psga", everyone, days=31, now=now).figures.as_provider
    assert (psga.uses.reads, psga.uses.rows_read, psga.requests.made) == (3, 220, 4)
    psga = figures.department(session, "psga", everyone, days=1, now=now).figures.as_provider
    assert (psga.uses.reads, psga.used_items) == (0, 0)


def test_consumers_are_shown_only_as_the_rule_allows(session: Session, now: datetime) -> None:
    found = figures.department(session, "psga", lambda consumer, provider: consumer == "zsj", now=now)
    population = found.top_items[0]
    assert population.uses.deliveries == 1  # the totals count every consumer
    assert [consumer.department for consumer in population.consumers] == ["zsj"]
    assert [item.item for item in found.items] == ["PSGA-RK-0001", "PSGA-X-0002", "PSGA-X-0003"]
    zsj = figures.department(session, "zsj", everyone, now=now)
    assert [item.item for item in zsj.top_used] == ["PSGA-RK-0001", "PSGA-X-0004"]
    assert zsj.top_used[0].uses.rows_read == 150 and zsj.top_used[0].uses.deliveries == 0  # its own uses only
    with pytest.raises(NotFound):
        figures.department(session, "nowhere", everyone, now=now)


def test_figures_stay_current_and_each_event_is_folded_once(session: Session, now: datetime) -> None:
    first = figures.platform(session, everyone, now=now)
    assert figures.platform(session, everyone, now=now) == first  # folded already: the same figures
    use(session, now, "zsj", "data.read", "allowed", "PSGA-RK-0001", 7)
    again = figures.platform(session, everyone, now=now)
    assert again.platform.uses.reads == first.platform.uses.reads + 1
    assert again.platform.uses.rows_read == first.platform.uses.rows_read + 7
    days = session.execute(select(func.sum(UsageDay.reads), func.sum(UsageDay.rows_read))).one()
    months = session.execute(select(func.sum(UsageMonth.reads), func.sum(UsageMonth.rows_read))).one()
    assert tuple(days) == tuple(months) == (8, 315)  # every allowed read ever, once


def _month(moment: datetime) -> date:
    return moment.date().replace(day=1)


def test_the_history_per_month(session: Session, now: datetime) -> None:
    found = history.history(session, ["psga", "zsj"], months=12, now=now)
    assert [entry.department for entry in found.departments] == ["psga", "zsj"]
    psga = found.departments[0].periods
    assert len(psga) == 12 and psga[-1].month == _month(now)
    assert all(period.published_items == 3 for period in psga)
    # The population item was used in the months of these uses (90, 30, 29, 3, 2 and 1 days ago); nothing else.
    used = {_month(now - days * DAY) for days in (90, 30, 29, 3, 2, 1)}
    assert {period.month for period in psga if period.used_items} == used
    assert all(period.used_items == 1 and period.share_used == 0.3333 for period in psga if period.month in used)
    zsj = found.departments[1].periods
    assert all(period.published_items == 1 and period.used_items == (period.month == _month(now - 4 * DAY))
               for period in zsj)  # fmt: skip
    with pytest.raises(NotFound):
        history.history(session, ["nowhere"], now=now)


def test_an_empty_platform(session: Session) -> None:
    found: PlatformUtilisation = figures.platform(session, everyone)
    assert found.platform.published_items == 0 and found.platform.share_used is None and found.top_items == []
