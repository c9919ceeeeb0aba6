"""The outbox: each notification's deliveries are rows enqueued in the transaction that made it (a rolled-back
event sends nothing) and sent later by ``deliver_pending`` (the ``deliver_notifications`` DAG, every minute), never
inside a request or an ingestion.

A drainer claims due deliveries in a short transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several drainers
share the work; SQLite has one writer) and leases them: the claim counts the attempt and moves ``next_attempt_at``
past the lease, by a compare-and-set on the attempt count, so no two drainers send the same delivery and one that
dies leaves it due again when the lease ends. A delivery whose attempts were all claimed already (its drainers died
while sending it, as a task killed at its timeout does) is given up at the claim instead of being sent again. It
sends outside any transaction, each within a deadline, and records each outcome in a transaction of its own right
after the send (a drainer killed later loses none of it): ``sent``, or ``retrying`` at doubling intervals up to a
cap, or ``gave_up`` after the last attempt. A webhook goes only to a channel of the notice's own department (a
deleted channel's id may be another department's channel later); deleting a channel ends its deliveries.
Delivery is at least once: a webhook receiver drops a repeated ``X-Datashare-Delivery``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from catalog import logsafe
from catalog.access.models import UserAccount
from catalog.access.service import Actor, Principal
from catalog.audit import service as audit
from catalog.db import session_scope, utcnow
from catalog.departments.models import Department
from catalog.errors import InvalidTransition, NotFound
from catalog.notifications import audiences
from catalog.notifications.models import Notification, NotificationChannel, NotificationDelivery
from catalog.notifications.senders import Content, describe, send_mail, send_webhook, webhook_body
from catalog.settings import Settings

EMAIL, WEBHOOK = "email", "webhook"
CHANNELS = (EMAIL, WEBHOOK)
PENDING, RETRYING, SENT, GAVE_UP = "pending", "retrying", "sent", "gave_up"
DUE, FAILING = (PENDING, RETRYING), (RETRYING, GAVE_UP)
LEASE_MARGIN = timedelta(minutes=1)
CHANNEL_GONE = "the channel was deleted or disabled"
OTHER_DEPARTMENT = "the channel is not the notice's department's (a deleted channel's id, reused)"
log = logsafe.logger(__name__)


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class DeliveryNotFailing(InvalidTransition):
    code = "delivery_not_failing"


@dataclass(frozen=True)
class DeliveryRead:
    id: int
    notification_id: int
    kind: str
    department: str | None
    item_code: str | None
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    gave_up: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"claimed": self.claimed, "sent": self.sent, "retrying": self.retrying, "gave_up": self.gave_up}


@dataclass
class _Job:
    """A claimed delivery with all it needs to be sent without the database."""

    delivery_id: int
    channel: str
    attempts: int
    content: Content
    address: str | None = None  # e-mail
    url: str | None = None  # webhook
    secret_variable: str | None = None
    unsendable: str | None = None  # why it can never be sent (no address any more, channel gone or disabled)
    error: str | None = field(default=None)


def enqueue(session: Session, notifications: Sequence[Notification]) -> int:
    """Add the deliveries of flushed notifications: a mail to each addressee with an address, a post to each of
    the department's enabled channels. The number added."""
    now, rows = utcnow(), []
    codes = {row.id: row.code for row in session.execute(select(Department.id, Department.code))}
    targets: dict[tuple[str, int | None], list[tuple[str, str]]] = {}  # the same for every notice of an audience
    for notification in notifications:
        key = (notification.audience, notification.department_id)
        if key not in targets:
            people = audiences.recipients(session, key[0], codes.get(key[1]) if key[1] is not None else None)
            targets[key] = [(EMAIL, f"{audiences.USER}{name}") for name in people]
            targets[key] += [(WEBHOOK, f"channel:{channel}") for channel in audiences.channels(session, *key)]
        due = {"status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
        rows += [{"notification_id": notification.id, "channel": channel, "target": target, **due}
                 for channel, target in targets[key]]  # fmt: skip
    if rows:
        session.execute(insert(NotificationDelivery), rows)
    return len(rows)


def deliver_pending(engine: Engine, settings: Settings, now: datetime | None = None, limit: int = 100) -> DrainReport:
    """Claim up to ``limit`` due deliveries, send them, record each outcome. Mail waits while no SMTP host is set."""
    now = now or utcnow()
    with session_scope(engine) as session:
        exhausted = give_up_exhausted(session, settings, now)
        jobs = _claim(session, settings, now, limit)
    report = DrainReport(claimed=len(jobs), gave_up=exhausted)
    for job in jobs:
        job.error = job.unsendable or _attempt(job, settings)
        with session_scope(engine) as session:  # at once: a drainer killed at the next send keeps this outcome
            status = _record(session, settings, job, now)
        setattr(report, status, getattr(report, status) + 1)
    return report


def give_up_exhausted(session: Session, settings: Settings, now: datetime) -> int:
    """Give up the due deliveries whose every attempt was claimed already: their drainers died while sending them
    (a receiver that holds each send until the task is killed would otherwise be sent to for ever). How many."""
    given_up = session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.status.in_(DUE), NotificationDelivery.next_attempt_at <= now,
               NotificationDelivery.attempts >= settings.notification_max_attempts)
        .values(status=GAVE_UP, last_error=f"all {settings.notification_max_attempts} attempts were claimed and none "
                "finished: the drainer stopped while sending")
    )  # fmt: skip
    return int(given_up.rowcount)  # type: ignore[attr-defined]


def end_channel_deliveries(session: Session, channel_id: int) -> int:
    """Give up the deliveries still due on a channel being deleted: its id may later be another department's
    channel (SQLite reuses the highest id), which must never receive them. How many."""
    ended = session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.channel == WEBHOOK, NotificationDelivery.target == f"channel:{channel_id}",
               NotificationDelivery.status.in_(DUE))
        .values(status=GAVE_UP, last_error=CHANNEL_GONE)
    )  # fmt: skip
    return int(ended.rowcount)  # type: ignore[attr-defined]


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: doubling from the base, up to the cap."""
    seconds = settings.notification_retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.notification_retry_max_seconds))


def failing_deliveries(session: Session) -> dict[str, int]:
    """Per channel, the deliveries now retrying or given up (every channel named, 0 when none)."""
    counts = session.execute(
        select(NotificationDelivery.channel, func.count())
        .where(NotificationDelivery.status.in_(FAILING))
        .group_by(NotificationDelivery.channel)
    ).all()
    return {channel: 0 for channel in CHANNELS} | {str(channel): int(count) for channel, count in counts}


def listing(session: Session, failed_only: bool = False, limit: int = 100) -> list[DeliveryRead]:
    """Deliveries, newest first; ``failed_only``: those retrying or given up."""
    statement = _reads().order_by(NotificationDelivery.id.desc()).limit(limit)
    if failed_only:
        statement = statement.where(NotificationDelivery.status.in_(FAILING))
    return [_read(*row) for row in session.execute(statement)]


def retry_now(session: Session, delivery_id: int, actor: Actor) -> DeliveryRead:
    """Make a retrying or given-up delivery due at once (a given-up one gets its attempts back); audited."""
    found = session.execute(_reads().where(NotificationDelivery.id == delivery_id)).one_or_none()
    if found is None:
        raise DeliveryNotFound(f"no delivery {delivery_id}")
    if found[0].status not in FAILING:
        raise DeliveryNotFailing(f"delivery {delivery_id} is {found[0].status}: only a failing one is retried")
    values: dict[str, Any] = {"status": RETRYING, "next_attempt_at": utcnow()}
    if found[0].status == GAVE_UP:
        values["attempts"] = 0
    session.execute(update(NotificationDelivery).where(NotificationDelivery.id == delivery_id).values(**values))
    who = actor if isinstance(actor, Principal) else Principal(actor, None)
    audit.record(session, who.subject, who.department, "notification.retry", "done", delivery_id=delivery_id,
                 channel=found[0].channel, previous_status=found[0].status)  # fmt: skip
    session.expire_all()
    return _read(*session.execute(_reads().where(NotificationDelivery.id == delivery_id)).one())


def lease(settings: Settings, limit: int) -> timedelta:
    """How long claimed deliveries are held: longer than sending all of them could take (a webhook ends at its
    deadline; mail's timeout applies to connecting, sending and reading apart), so no other drainer claims one while
    it may still be sent."""
    return timedelta(seconds=3 * settings.notification_timeout_seconds * limit) + LEASE_MARGIN


def _claim(session: Session, settings: Settings, now: datetime, limit: int) -> list[_Job]:
    due = select(NotificationDelivery.id, NotificationDelivery.attempts).where(
        NotificationDelivery.status.in_(DUE), NotificationDelivery.next_attempt_at <= now
    )
    if settings.smtp_host is None:
        due = due.where(NotificationDelivery.channel != EMAIL)
    rows = session.execute(
        due.order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for delivery_id, attempts in rows:  # compare-and-set: a drainer that read the same row first keeps it
        taken = session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id, NotificationDelivery.attempts == attempts,
                   NotificationDelivery.status.in_(DUE))
            .values(attempts=attempts + 1, next_attempt_at=now + lease(settings, limit))
        )  # fmt: skip
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(delivery_id)
    return _jobs(session, claimed)


def _jobs(session: Session, claimed: list[int]) -> list[_Job]:
    if not claimed:
        return []
    rows = session.execute(
        select(NotificationDelivery, Notification, Department.code)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .outerjoin(Department, Department.id == Notification.department_id)
        .where(NotificationDelivery.id.in_(claimed))
        .order_by(NotificationDelivery.id)
    ).all()
    jobs = []
    for delivery, notification, department in rows:
        content = Content(notification.id, notification.kind, department, notification.item_code,
                          notification.subscription_id, notification.message, dict(notification.detail or {}),
                          notification.created_at)  # fmt: skip
        job = _Job(delivery.id, delivery.channel, delivery.attempts, content)
        _address(session, job, delivery.target, notification.department_id)
        jobs.append(job)
    return jobs


def _address(session: Session, job: _Job, target: str, department_id: int | None) -> None:
    """Where the delivery goes, looked up now (an address or a channel changed since it was enqueued counts); a
    channel only of the notice's department."""
    if job.channel == EMAIL:
        user = session.scalar(select(UserAccount).where(UserAccount.username == target.removeprefix(audiences.USER)))
        if user is None or not user.active or not user.email:
            job.unsendable = "the recipient is inactive or has no e-mail address"
        else:
            job.address = user.email
        return
    channel = session.get(NotificationChannel, int(target.removeprefix("channel:")))
    if channel is None or not channel.enabled:
        job.unsendable = CHANNEL_GONE
    elif channel.department_id != department_id:
        job.unsendable = OTHER_DEPARTMENT
    else:
        job.url, job.secret_variable = channel.url, channel.secret_variable


def _attempt(job: _Job, settings: Settings) -> str | None:
    """Send one delivery; None when sent, else what failed (never a secret, an address or the message)."""
    try:
        if job.channel == EMAIL:
            send_mail(settings, str(job.address), job.content)
        else:
            secret = os.environ.get(str(job.secret_variable))
            if not secret:
                return f"the environment variable {job.secret_variable} holding the webhook's secret is not set"
            send_webhook(settings, str(job.url), secret, webhook_body(job.content, job.delivery_id, settings),
                         job.delivery_id)  # fmt: skip
    except Exception as error:
        text = describe(error)
        log.warning("delivery %s over %s failed (attempt %s): %s", job.delivery_id, job.channel, job.attempts, text)
        return text
    return None


def _record(session: Session, settings: Settings, job: _Job, now: datetime) -> str:
    values: dict[str, Any]
    if job.error is None:
        values = {"status": SENT, "sent_at": utcnow(), "last_error": None}
    elif job.unsendable is not None or job.attempts >= settings.notification_max_attempts:
        values = {"status": GAVE_UP, "last_error": job.error}
    else:
        values = {"status": RETRYING, "last_error": job.error, "next_attempt_at": now + backoff(settings, job.attempts)}
    session.execute(update(NotificationDelivery).where(NotificationDelivery.id == job.delivery_id).values(**values))
    return str(values["status"])


def _reads() -> Any:
    return (
        select(NotificationDelivery, Notification.kind, Department.code, Notification.item_code)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .outerjoin(Department, Department.id == Notification.department_id)
    )


def _read(delivery: NotificationDelivery, kind: str, department: str | None, item_code: str | None) -> DeliveryRead:
    return DeliveryRead(
        delivery.id, delivery.notification_id, kind, department, item_code, delivery.channel, delivery.target,
        delivery.status, delivery.attempts, delivery.next_attempt_at, delivery.last_error, delivery.created_at,
        delivery.sent_at,
    )  # fmt: skip
