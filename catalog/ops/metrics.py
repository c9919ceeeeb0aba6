"""Figures read from the catalog database at scrape time, for Prometheus: ingestion runs by outcome, batches waiting in
quarantine, items by freshness per department, notification deliveries failing per channel.

They are the database's, not a process's: whichever API process answers a scrape reads them, so they are right
whatever the number of processes. Each process reads them at most every ``cache_seconds``; a scrape meanwhile gets the
figures read last, and a scrape that arrives while another thread reads them does not wait (a storm of scrapes, or a
database that hangs, holds no more than one thread). A figure that cannot be read (its module not there yet, its table
not migrated, the database away) is left out, and ``datashare_catalog_figure_up{figure}`` says so.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.ingest.models import IngestBatch

log = logsafe.logger(__name__)
Clock = Callable[[], float]


OPEN_OUTCOMES = frozenset({"running", "quarantined"})  # may still change; every other outcome is final
LOOKBACK_IDS = 2_000  # runs this close to the newest are read again each time: one may commit after a later one


class IngestTally:
    """Ingestion runs by outcome, kept by reading only what may have changed since the last reading: the runs
    recorded since (along the primary key) and those whose outcome may still change (running, quarantined), by id.
    Counting the whole table at every scrape would read a million run records, reports and all.

    A run's record is committed when it starts, in a short transaction of its own, so ids are committed nearly in
    order; the newest ``LOOKBACK_IDS`` are read again each time, so one committed after later ones is still found.
    A process's first reading counts the older runs in the database (grouped, once). Run records are deleted only
    with their item, which the catalog never does (items are retired)."""

    def __init__(self) -> None:
        self._floor: int | None = None  # runs at or below it are in _final or _open; those above are read each time
        self._final: Counter[str] = Counter()
        self._open: dict[int, str] = {}

    def outcomes(self, session: Session) -> dict[str, int]:
        """Read what may have changed; the tally moves only once every read succeeded."""
        if self._floor is None:
            floor, final, still_open = _older_runs(session)
        else:
            floor, final, still_open = self._floor, Counter(self._final), {}
            for batch_id, outcome in _current_outcomes(session, list(self._open)):  # one no longer there is gone
                _tally(final, still_open, batch_id, outcome)
        recent = session.execute(
            select(IngestBatch.id, IngestBatch.outcome).where(IngestBatch.id > floor).order_by(IngestBatch.id)
        ).all()
        floor = max(floor, recent[-1][0] - LOOKBACK_IDS) if recent else floor
        for batch_id, outcome in recent:
            if batch_id <= floor:
                _tally(final, still_open, batch_id, outcome)
        self._floor, self._final, self._open = floor, final, still_open
        newest = Counter(outcome for batch_id, outcome in recent if batch_id > floor)
        return dict(final + Counter(still_open.values()) + newest)


def _tally(final: Counter[str], still_open: dict[int, str], batch_id: int, outcome: str) -> None:
    if outcome in OPEN_OUTCOMES:
        still_open[batch_id] = outcome
    else:
        final[outcome] += 1


def _older_runs(session: Session) -> tuple[int, Counter[str], dict[int, str]]:
    """All but the newest ``LOOKBACK_IDS`` runs: the final outcomes counted, the open ones by id."""
    floor = max(0, (session.scalar(select(func.max(IngestBatch.id))) or 0) - LOOKBACK_IDS)
    older = IngestBatch.id <= floor
    counted = select(IngestBatch.outcome, func.count()).where(older, IngestBatch.outcome.not_in(OPEN_OUTCOMES))
    final = Counter({outcome: int(count) for outcome, count in session.execute(counted.group_by(IngestBatch.outcome))})
    open_runs = select(IngestBatch.id, IngestBatch.outcome).where(older, IngestBatch.outcome.in_(OPEN_OUTCOMES))
    return floor, final, {batch_id: outcome for batch_id, outcome in session.execute(open_runs)}


def _current_outcomes(session: Session, ids: list[int]) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    for start in range(0, len(ids), 1000):
        statement = select(IngestBatch.id, IngestBatch.outcome).where(IngestBatch.id.in_(ids[start : start + 1000]))
        rows += [(batch_id, outcome) for batch_id, outcome in session.execute(statement)]
    return rows


def ingest_families(tally: IngestTally, session: Session) -> list[Metric]:
    outcomes = tally.outcomes(session)
    runs = GaugeMetricFamily("datashare_ingest_runs", "Ingestion runs recorded, by outcome", labels=["outcome"])
    for outcome, count in sorted(outcomes.items()):
        runs.add_metric([outcome], count)
    waiting = GaugeMetricFamily("datashare_quarantined_batches", "Batches waiting in quarantine for a decision")
    waiting.add_metric([], outcomes.get("quarantined", 0))
    return [runs, waiting]


def _freshness_families(session: Session) -> list[Metric]:
    status_counts = _provided("catalog.ops.freshness", "status_counts")
    items = GaugeMetricFamily(
        "datashare_items_by_freshness",
        "Published items by freshness against their declared update frequency (on_time, late, overdue, "
        "never_received), per provider department",
        labels=["department", "status"],
    )
    for department, status, count in status_counts(session):
        items.add_metric([department, status], count)
    return [items]


def _delivery_families(session: Session) -> list[Metric]:
    failing_deliveries = _provided("catalog.notifications.outbox", "failing_deliveries")
    failing = GaugeMetricFamily(
        "datashare_notification_deliveries_failing",
        "Outbox deliveries currently failing (being retried) or given up, per channel",
        labels=["channel"],
    )
    for channel, count in sorted(failing_deliveries(session).items()):
        failing.add_metric([channel], count)
    return [failing]


class FigureUnavailable(Exception):
    """The service a figure comes from is not there (yet)."""


def _provided(module: str, name: str) -> Callable[..., Any]:
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as missing:
        raise FigureUnavailable(f"{module}.{name} is not available") from missing
    return found


@dataclass(frozen=True)
class _Reading:
    families: list[Metric]
    read_at: float


class CatalogFigures(Collector):
    """A Prometheus collector of the catalog's own figures, read through ``engine`` and kept ``cache_seconds``."""

    def __init__(self, engine: Engine, cache_seconds: float, clock: Clock = time.monotonic) -> None:
        self.engine, self.cache_seconds, self._clock = engine, cache_seconds, clock
        tally = IngestTally()
        self.figures: dict[str, Callable[[Session], list[Metric]]] = {
            "ingest": partial(ingest_families, tally),
            "freshness": _freshness_families,
            "deliveries": _delivery_families,
        }
        self._reading: _Reading | None = None
        self._reading_lock = threading.Lock()
        self._reported: set[str] = set()  # figures whose absence was logged (once each)

    def collect(self) -> Iterator[Metric]:
        reading = self._reading
        if reading is None or self._clock() - reading.read_at >= self.cache_seconds:
            reading = self._read() or reading
        if reading is not None:
            yield from reading.families

    def _read(self) -> _Reading | None:
        """A fresh reading; None when another thread is reading (the last reading will do, if there is one)."""
        if not self._reading_lock.acquire(blocking=False):
            return None
        try:
            up = GaugeMetricFamily(
                "datashare_catalog_figure_up", "1 if the figure was read from the database, else 0", labels=["figure"]
            )
            families: list[Metric] = [up]
            for figure, read in self.figures.items():
                read_families = self._figure(figure, read)
                up.add_metric([figure], 0 if read_families is None else 1)
                families += read_families or []
            self._reading = _Reading(families, self._clock())
            return self._reading
        finally:
            self._reading_lock.release()

    def _figure(self, figure: str, read: Callable[[Session], list[Metric]]) -> list[Metric] | None:
        """One figure in a read-only transaction of its own (a failed statement spoils no other figure)."""
        try:
            with Session(self.engine) as session:
                families = read(session)
                session.rollback()
        except FigureUnavailable as missing:
            self._report_once(figure, str(missing))
            return None
        except SQLAlchemyError as error:
            log.warning("metrics: figure %s could not be read (%s)", figure, type(error).__name__)
            return None
        self._reported.discard(figure)
        return families

    def _report_once(self, figure: str, reason: str) -> None:
        if figure not in self._reported:
            self._reported.add(figure)
            log.warning("metrics: figure %s is left out: %s", figure, reason)
