"""Figures read from the catalog database at scrape time, for Prometheus: ingestion runs by outcome, batches waiting in
quarantine, items by freshness per department, notification deliveries failing per channel.

They are the database's, not a process's: whichever API process answers a scrape reads them, so they are right
whatever the number of processes. Each process reads them at most every ``cache_seconds``; a scrape meanwhile gets the
figures read last, and a scrape that arrives while another thread reads them does not wait (a storm of scrapes, or a
database that hangs, holds no more than one thread). A figure that cannot be read (the database away, its table not
migrated) is left out, and ``datashare_catalog_figure_up{figure}`` says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.ingest.models import IngestBatch

log = logsafe.logger(__name__)
Clock = Callable[[], float]


def _ingest_families(session: Session) -> list[Metric]:
    # An index-only scan of ix_ingest_batch_outcome_id: the reports and the rest of the run records are not read.
    counted = select(IngestBatch.outcome, func.count()).group_by(IngestBatch.outcome)
    outcomes = {outcome: int(count) for outcome, count in session.execute(counted)}
    runs = GaugeMetricFamily("datashare_ingest_runs", "Ingestion runs recorded, by outcome", labels=["outcome"])
    for outcome, count in sorted(outcomes.items()):
        runs.add_metric([outcome], count)
    waiting = GaugeMetricFamily("datashare_quarantined_batches", "Batches waiting in quarantine for a decision")
    waiting.add_metric([], outcomes.get("quarantined", 0))
    return [runs, waiting]


def _freshness_families(session: Session) -> list[Metric]:
    from catalog.ops.freshness import status_counts

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
    from catalog.notifications.outbox import failing_deliveries

    failing = GaugeMetricFamily(
        "datashare_notification_deliveries_failing",
        "Outbox deliveries currently failing (being retried) or given up, per channel",
        labels=["channel"],
    )
    for channel, count in sorted(failing_deliveries(session).items()):
        failing.add_metric([channel], count)
    return [failing]


@dataclass(frozen=True)
class _Reading:
    families: list[Metric]
    read_at: float


class CatalogFigures(Collector):
    """A Prometheus collector of the catalog's own figures, read through ``engine`` and kept ``cache_seconds``."""

    def __init__(self, engine: Engine, cache_seconds: float, clock: Clock = time.monotonic) -> None:
        self.engine, self.cache_seconds, self._clock = engine, cache_seconds, clock
        self.figures: dict[str, Callable[[Session], list[Metric]]] = {
            "ingest": _ingest_families,
            "freshness": _freshness_families,
            "deliveries": _delivery_families,
        }
        self._reading: _Reading | None = None
        self._reading_lock = threading.Lock()

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
        except SQLAlchemyError as error:
            log.warning("metrics: figure %s could not be read (%s)", figure, type(error).__name__)
            return None
        return families
