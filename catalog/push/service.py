"""Push delivery of new versions: each active, unpaused read subscription of an item gets its current version at each
of its targets, once (a record per target and version). Run by the item's delivery DAG when the item's Asset gets
an event (a version published), or by ops (``datashare deliveries run``).

A target is sent what a read of the subscription would return: its grant (approved fields, masked, scoped) of the
version, through the same code as the API's reads; audited as ``data.deliver`` with the rows sent. A failure is
recorded with its attempts and a reason fit for ops, ops and the consumer's stewards are told once per target and
version, and the next run tries again; the others' deliveries go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, Table, and_, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification.masking import pseudonym_key
from catalog.db import session_scope, utcnow
from catalog.delivery import service as delivery
from catalog.delivery.access_cache import AccessCache
from catalog.departments.models import Department
from catalog.errors import DomainError
from catalog.ingest import generations
from catalog.ingest.models import ItemVersion
from catalog.items.models import CatalogItem
from catalog.notifications import notices, senders
from catalog.push import links, writers
from catalog.push.models import DeliveryTarget, PushDelivery
from catalog.push.targets import checked_drop
from catalog.settings import Settings
from catalog.subscriptions.models import Subscription

log = logging.getLogger(__name__)
DELIVERED, FAILED, SENDING = "delivered", "failed", "sending"
STALE_MARGIN_SECONDS = 300  # a send claimed this long past its longest time was interrupted: another run takes it


@dataclass
class Report:
    item: str
    delivered: list[str] = field(default_factory=list)  # "<department>/<target> v<version>: <rows> rows"
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "delivered": self.delivered, "failed": self.failed}

    @property
    def summary(self) -> str:
        if not self.delivered and not self.failed:
            return f"NOTHING TO DELIVER for {self.item}: every target has the current version (or none is due)"
        verdict = "DELIVERY FAILED" if self.failed else "DELIVERED"
        return f"{verdict} {self.item}: {len(self.delivered)} delivered, {len(self.failed)} failed"


@dataclass(frozen=True)
class _Due:
    target_id: int
    version: int


def deliver_item(engine: Engine, settings: Settings, item_code: str, trigger: str) -> Report:
    """Send the item's current version to every target that lacks it."""
    report = Report(item_code)
    cache = AccessCache(0, pseudonym_key(settings.secret_key.get_secret_value()))
    with session_scope(engine) as session:
        due = [_Due(target_id, version) for target_id, version in session.execute(_due(item_code))]
    for work in due:
        outcome = _deliver_one(engine, settings, cache, item_code, work, trigger)
        if outcome is not None:  # None: another run holds it
            line, ok = outcome
            (report.delivered if ok else report.failed).append(line)
    return report


def _due(item_code: str) -> Select[int, int]:
    """Targets of the item's active, unpaused read subscriptions without a delivered record of the current version."""
    delivered = select(PushDelivery.id).where(
        PushDelivery.target_id == DeliveryTarget.id, PushDelivery.version == ItemVersion.number,
        PushDelivery.status == DELIVERED,
    )  # fmt: skip
    return (
        select(DeliveryTarget.id, ItemVersion.number)
        .join(Subscription, Subscription.id == DeliveryTarget.subscription_id)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .join(ItemVersion, ItemVersion.id == CatalogItem.current_version_id)
        .where(CatalogItem.code == item_code, Subscription.status == "active", Subscription.expires_at > utcnow(),
               Subscription.kind == "read", Subscription.deliveries_paused.is_(False), ~delivered.exists(),
               DeliveryTarget.deleted_at.is_(None))
        .order_by(DeliveryTarget.id)
    )  # fmt: skip


def _deliver_one(engine: Engine, settings: Settings, cache: AccessCache, item_code: str, work: _Due,
                 trigger: str) -> tuple[str, bool] | None:  # fmt: skip
    with session_scope(engine) as session:
        target, department = _target(session, work.target_id)
        stale = timedelta(seconds=settings.delivery_database_seconds + STALE_MARGIN_SECONDS)
        record_id = _claim(session, target, department, item_code, work.version, trigger, stale)
        label = f"{department}/{target.name} v{work.version}"
        if record_id is None:
            return None
        principal = Principal(f"delivery:{target.id}", department)
        try:
            grant = delivery.grant_for(session, cache, principal, item_code, work.version)
            rows, mode = _send(session, settings, cache, target, grant, record_id)
        except Exception as error:  # one target's failure holds back no other's
            session.rollback()
            reason = _reason(error)
            _fail(session, record_id, reason, target, department, item_code, work.version)
            log.error("FAILED delivering %s %s: %s", item_code, label, reason)
            return f"{label}: {reason}", False
        _done(session, record_id, rows, mode)
        audit.record(session, principal.subject, department, "data.deliver", "done", item_code=item_code,
                     version=grant.version, subscription_id=grant.subscription_id, fields_returned=grant.names,
                     fields_masked=grant.masked, rows=rows, target=target.name, kind=target.kind, mode=mode,
                     delivery=record_id)  # fmt: skip
    return f"{label}: {rows} rows ({target.kind}{', ' + mode if mode else ''})", True


def _send(session: Session, settings: Settings, cache: AccessCache, target: DeliveryTarget, grant: delivery.Grant,
          record_id: int) -> tuple[int, str | None]:  # fmt: skip
    connection = session.connection()
    if target.kind == "webhook":
        rows = delivery.count_rows(connection, grant, {})
        writers.send_webhook(settings, str(target.url), target.secret_variable, _notice(settings, grant, target,
                             record_id, rows), record_id)  # fmt: skip
        return rows, None
    if target.kind == "file":
        batches = _counted(delivery.stream_batches(connection, grant, {}))
        folder = checked_drop(str(target.url), settings, _consumer(session, target))  # by this worker's settings
        writers.write_file(folder, f"{grant.item}-v{grant.version}", grant, batches, str(target.file_format))
        return batches.rows, None
    change = _change(session, cache, target, grant) if target.mode == "changed" else None
    change = change or writers.Change(delivery.stream_batches(connection, grant, {}), None)
    dsn = writers.secret_of(target.secret_variable)
    return writers.write_table(dsn, str(target.db_schema), str(target.db_table), grant, change,
                               settings.delivery_database_seconds)  # fmt: skip


class _counted:
    """Batches passed on, their rows counted."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._batches, self.rows = batches, 0

    def __iter__(self) -> Iterator[Any]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch


def _change(
    session: Session, cache: AccessCache, target: DeliveryTarget, grant: delivery.Grant
) -> writers.Change | None:
    """The rows new or changed since the version this target last received, and the keys gone; None (the whole
    version) when there is no such version any more, the item has no key the grant shows unmasked, or the fields
    differ."""
    before = session.scalar(
        select(PushDelivery.version).where(PushDelivery.target_id == target.id, PushDelivery.status == DELIVERED,
                                           PushDelivery.version < grant.version).order_by(PushDelivery.version.desc())
        .limit(1)
    )  # fmt: skip
    item = cache.item(session, grant.item)
    key = [f.name for f in item.declared if f.key] if item else []
    unmasked = {f.name for f in grant.fields if not f.masked}
    if before is None or not key or not set(key) <= unmasked:
        return None
    principal = Principal(f"delivery:{target.id}", _consumer(session, target))
    try:
        old = delivery.grant_for(session, cache, principal, grant.item, before)
    except DomainError:  # past its retention
        return None
    assert item is not None
    return _diff(session, grant, old, key, generations.touched_rows(session, item.id, old.version, grant.version))


def _diff(session: Session, new: delivery.Grant, old: delivery.Grant, key: list[str],
          touched: generations.Touched | None = None) -> writers.Change | None:  # fmt: skip
    """The rows of ``new`` whose granted values ``old`` has not, and the keys ``old`` has that ``new`` has not. Two
    versions of one generation (``touched``) are compared on the generation's rows that differ between them (found
    through its indexes): the others are the same rows in both."""
    new_table, old_table = delivery.version_table(new), delivery.version_table(old)
    new_columns = {f["name"]: new_table.c[f["column"]] for f in new.version_fields}
    old_columns = {f["name"]: old_table.c[f["column"]] for f in old.version_fields}
    names = new.names
    if [f.name for f in old.fields] != names or any(
        str(new_columns[n].type) != str(old_columns[n].type) for n in names
    ):
        return None
    (added, added_where), (closed, closed_where) = _compared(new, old, touched)
    changed = (
        select(*(added[n] for n in names)).where(*added_where)
        .except_(select(*(closed[n] for n in names)).where(*closed_where))
        .subquery()
    )  # fmt: skip
    changed_keys = select(*(changed.c[names.index(n)] for n in key))
    rows = delivery.rows_query(new, {}).where(tuple_(*(new_columns[n] for n in key)).in_(changed_keys))
    gone = select(*(closed[n] for n in key)).where(*closed_where).except_(
        select(*(added[n] for n in key)).where(*added_where))  # fmt: skip
    connection = session.connection()
    gone_keys = [tuple(row) for row in connection.execute(gone)]
    return writers.Change(delivery.statement_batches(connection, new, rows), gone_keys, key)


# The columns by field name, and the conditions of the rows compared.
Compared = tuple[dict[str, ColumnElement[Any]], list[ColumnElement[bool]]]


def _compared(
    new: delivery.Grant, old: delivery.Grant, touched: generations.Touched | None
) -> tuple[Compared, Compared]:
    """What is compared: each version's rows in its grant's scope, or, in one generation, only its rows added since
    ``old`` (in the new scope) and those closed since (in the old one)."""
    if touched is None:
        new_table, old_table = delivery.version_table(new), delivery.version_table(old)
        return _columns(new, new_table, []), _columns(old, old_table, [])
    generation = touched.generation
    return _columns(new, generation, [touched.added]), _columns(old, generation, [touched.closed])


def _columns(grant: delivery.Grant, table: Table, conditions: list[ColumnElement[bool]]) -> Compared:
    columns = {f["name"]: table.c[f["column"]] for f in grant.version_fields}
    return columns, [*conditions, *delivery.scoped(table, grant)]


def _notice(settings: Settings, grant: delivery.Grant, target: DeliveryTarget, record_id: int, rows: int
            ) -> dict[str, Any]:  # fmt: skip
    expires = int(time.time() + settings.delivery_link_minutes * 60)
    secret = settings.secret_key.get_secret_value()
    download = {kind: links.url(settings.public_url, secret, record_id, expires, kind) for kind in links.FORMATS}
    return {"kind": "version_delivered", "delivery": record_id, "item": grant.item, "version": grant.version,
            "rows": rows, "subscription": grant.subscription_id, "fields": grant.names, "masked_fields": grant.masked,
            "target": target.name, "download": download, "download_expires_at": expires}  # fmt: skip


def _target(session: Session, target_id: int) -> tuple[DeliveryTarget, str]:
    row = session.execute(
        select(DeliveryTarget, Department.code)
        .join(Department, Department.id == DeliveryTarget.department_id)
        .where(DeliveryTarget.id == target_id)
    ).one()
    return row[0], row[1]


def _consumer(session: Session, target: DeliveryTarget) -> str:
    return str(session.scalar(select(Department.code).where(Department.id == target.department_id)))


def _claim(session: Session, target: DeliveryTarget, department: str, item_code: str, version: int, trigger: str,
           stale: timedelta) -> int | None:  # fmt: skip
    """The record of this target and version, claimed for this run (made, or taken over from a failed attempt or
    one ``sending`` for longer than ``stale``, its attempts counted) and committed before anything is sent: a
    webhook's notice names it. None when another run holds it or it was delivered meanwhile: two runs at once (the
    DAG and ``datashare deliveries run``) never send the same version twice."""
    now = utcnow()
    record_id = session.scalar(select(PushDelivery.id).where(PushDelivery.target_id == target.id,
                                                             PushDelivery.version == version))  # fmt: skip
    if record_id is None:
        record = PushDelivery(target_id=target.id, subscription_id=target.subscription_id, department=department,
                              target_name=target.name, kind=target.kind, item_code=item_code, version=version,
                              status=SENDING, attempts=1, trigger=trigger, first_tried_at=now,
                              last_tried_at=now)  # fmt: skip
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
        except IntegrityError:  # another run made it meanwhile: it is that run's to send
            return None
        session.commit()
        return record.id
    takeable = or_(PushDelivery.status == FAILED,
                   and_(PushDelivery.status == SENDING, PushDelivery.last_tried_at < now - stale))  # fmt: skip
    claimed = session.execute(
        update(PushDelivery).where(PushDelivery.id == record_id, takeable)
        .values(status=SENDING, attempts=PushDelivery.attempts + 1, trigger=trigger, last_tried_at=now)
        .returning(PushDelivery.id)
    ).scalar_one_or_none()  # fmt: skip
    session.commit()
    return claimed


def _done(session: Session, record_id: int, rows: int, mode: str | None) -> None:
    record = session.get(PushDelivery, record_id)
    assert record is not None
    record.status, record.rows, record.mode, record.error, record.finished_at = DELIVERED, rows, mode, None, utcnow()


def _fail(session: Session, record_id: int, reason: str, target: DeliveryTarget, department: str, item_code: str,
          version: int) -> None:  # fmt: skip
    record = session.get(PushDelivery, record_id)
    assert record is not None
    first = record.error is None  # no failure recorded yet (the claim made it "sending" again)
    record.status, record.error, record.finished_at = FAILED, reason, utcnow()
    if first:  # told once per target and version, however often it is tried again
        notices.delivery_failed(
            session,
            target.department_id,
            department,
            item_code,
            version,
            target.name,
            target.subscription_id,
            record_id,
        )
    session.commit()


def _reason(error: BaseException) -> str:
    """In words fit for ops: our refusals as they are; anything else by type and a redacted message."""
    if isinstance(error, DomainError):
        return error.message[: senders.MAX_ERROR_LENGTH]
    logsafe.log_failure(log, error, "delivery failed")
    return senders.describe(error)
