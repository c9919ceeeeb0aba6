"""What the freshness view says about items (catalog/ops/freshness.py computes it); plain values, cheap to import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FreshnessStatus(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    OVERDUE = "overdue"
    NEVER_RECEIVED = "never_received"


STATUSES = tuple(FreshnessStatus)
LATE_STATUSES = (FreshnessStatus.LATE, FreshnessStatus.OVERDUE, FreshnessStatus.NEVER_RECEIVED)


@dataclass(frozen=True)
class ItemFreshness:
    item: str
    title: str
    department: str
    source_system: str
    update_frequency: str
    status: FreshnessStatus
    last_received_at: datetime | None
    last_published_at: datetime | None
    last_checked_at: datetime | None  # the last pull attempt, and what it found (catalog.ops.feeds.CHECK_OUTCOMES)
    last_check_outcome: str | None
    expected_since: datetime  # the last received export or, none received, the item's publication
    due_at: datetime | None  # the first scheduled time after expected_since (None: the schedule never fires)
    late_since: datetime | None  # due_at plus grace, once passed
    as_of: datetime  # when it was computed

    @property
    def export_due(self) -> bool:
        """An export was due by now (the grace aside): a pull that finds none has found a missing export."""
        return self.due_at is not None and self.due_at <= self.as_of


@dataclass(frozen=True)
class StatusCounts:
    department: str | None  # None: all the departments counted
    total: int
    on_time: int
    late: int
    overdue: int
    never_received: int

    @property
    def behind(self) -> int:
        return self.late + self.overdue + self.never_received


@dataclass(frozen=True)
class FreshnessSummary:
    as_of: datetime
    overall: StatusCounts
    departments: list[StatusCounts]
