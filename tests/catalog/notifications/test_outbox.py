"""The outbox against real servers: mail to an SMTP server and signed webhooks to an HTTP server on free local
ports; retries at doubling intervals while a server is down, given up after the cap, nothing sent for a rolled-back
event, and each delivery sent once by drainers running at the same time."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from catalog.db import make_engine, session_scope, utcnow
from catalog.notifications import channels, notices, outbox
from catalog.notifications.channels import ChannelCreate
from catalog.notifications.models import Notification, NotificationChannel, NotificationDelivery
from catalog.notifications.senders import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from catalog.settings import Settings
from tests.catalog.notifications.conftest import Mailbox, WebhookServer, add_people, free_port

SECRET = "whsec-test-0123456789abcdef0123456789"
SECRET_VARIABLE = "PSGA_ALERTS_WEBHOOK_SECRET"


@pytest.fixture(scope="module")
def engine(backend: str, database_factory: object) -> Iterator[Engine]:
    engine = make_engine(database_factory(backend))  # type: ignore[operator]
    with session_scope(engine) as session:
        add_people(session)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def empty_outbox(engine: Engine) -> Iterator[None]:
    yield
    with session_scope(engine) as session:
        for table in (NotificationDelivery, Notification, NotificationChannel):
            session.execute(delete(table))


def settings(mailbox: Mailbox | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1" if mailbox else None, "smtp_port": mailbox.port if mailbox else 25,
        "smtp_security": "none", "smtp_from": "datashare@example.gov.cn", "notification_allowed_hosts": ["127.0.0.1"],
        "notification_retry_base_seconds": 60, "notification_retry_max_seconds": 240, "notification_max_attempts": 3,
        "notification_timeout_seconds": 5, "public_url": "https://datashare.example.gov.cn",
    }  # fmt: skip
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def quarantine_notice(session: Session) -> None:
    """A quarantined batch of the population item: for psga's stewards and for ops."""
    notices.batch_quarantined(session, "PSGA-RK-0001", 41, ["rule one", "rule two"])


def add_channel(engine: Engine, url: str) -> None:
    with session_scope(engine) as session:
        channels.create_channel(session, "psga", ChannelCreate(name="alerts", url=url), "test")


def deliveries(engine: Engine, channel: str | None = None) -> list[NotificationDelivery]:
    statement = select(NotificationDelivery).order_by(NotificationDelivery.id)
    if channel is not None:
        statement = statement.where(NotificationDelivery.channel == channel)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(statement))


def test_mail_reaches_the_stewards_and_ops_chinese_first(engine: Engine, mailbox: Mailbox) -> None:
    with session_scope(engine) as session:
        quarantine_notice(session)

    report = outbox.deliver_pending(engine, settings(mailbox))

    assert report.as_dict() == {"claimed": 2, "sent": 2, "retrying": 0, "gave_up": 0}
    assert sorted(to for recipients, _ in mailbox.received for to in recipients) == [
        "ops@example.gov.cn", "psga-steward@example.gov.cn"]  # fmt: skip
    message = mailbox.received[0][1]
    assert message["Subject"] == "[datashare] 批次已隔离 / A batch was quarantined PSGA-RK-0001"
    assert message["From"] == "datashare@example.gov.cn"
    body = message.get_content()
    assert "PSGA-RK-0001" in body and "批次 41" in body and "Batch 41" in body and "2 reason(s)" in body
    assert body.index("批次已隔离") < body.index("A batch was quarantined") < body.index("Batch 41")
    assert "https://datashare.example.gov.cn/notifications" in body
    assert "rule one" not in body  # reasons are counted, never quoted
    assert {row.status for row in deliveries(engine)} == {"sent"}
    assert outbox.deliver_pending(engine, settings(mailbox)).claimed == 0  # sent once


def test_webhooks_are_signed_and_a_receiver_can_verify_them(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)

    report = outbox.deliver_pending(engine, settings())  # no SMTP host: the mail waits, the webhook goes

    assert report.sent == 1 and len(webhook.posted) == 1  # the stewards' notice; ops' is not the department's
    posted = webhook.posted[0]
    timestamp, signed = posted.headers[TIMESTAMP_HEADER.lower()], posted.headers[SIGNATURE_HEADER.lower()]
    assert verify_signature(SECRET, timestamp, posted.body, signed)
    assert not verify_signature("another-secret", timestamp, posted.body, signed)
    assert not verify_signature(SECRET, timestamp, posted.body.replace(b"41", b"42"), signed)
    assert not verify_signature(SECRET, timestamp, posted.body, signed, now=int(timestamp) + 301)  # a replay
    payload = json.loads(posted.body)
    assert (payload["kind"], payload["department"], payload["item"]) == ("batch_quarantined", "psga", "PSGA-RK-0001")
    assert payload["title"] == {"zh": "批次已隔离", "en": "A batch was quarantined"}
    sent = [row for row in deliveries(engine) if row.channel == "webhook"]
    assert [row.status for row in sent] == ["sent"] and posted.headers[DELIVERY_HEADER.lower()] == str(sent[0].id)
    assert {row.status for row in deliveries(engine) if row.channel == "email"} == {"pending"}
    assert SECRET not in json.dumps([row.last_error for row in deliveries(engine)])


def test_a_server_down_is_retried_at_doubling_intervals_until_it_is_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    server = WebhookServer(port=free_port())  # not listening yet
    add_channel(engine, server.url)
    with session_scope(engine) as session:
        quarantine_notice(session)
    start, config = utcnow(), settings(notification_max_attempts=5)

    assert outbox.deliver_pending(engine, config, now=start).retrying == 1
    [failed] = deliveries(engine, "webhook")
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("retrying", 1, start + timedelta(seconds=60))
    assert failed.last_error and "refused" in failed.last_error.lower()
    assert outbox.deliver_pending(engine, config, now=start + timedelta(seconds=59)).claimed == 0  # not due yet
    outbox.deliver_pending(engine, config, now=start + timedelta(seconds=60))
    [again] = deliveries(engine, "webhook")
    assert (again.attempts, again.next_attempt_at) == (2, start + timedelta(seconds=60 + 120))
    with session_scope(engine) as session:
        assert outbox.failing_deliveries(session) == {"email": 0, "webhook": 1}

    server.start()
    try:
        assert outbox.deliver_pending(engine, config, now=start + timedelta(seconds=180)).sent == 1
    finally:
        server.stop()
    [sent] = deliveries(engine, "webhook")
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None) and len(server.posted) == 1
    with session_scope(engine) as session:
        assert outbox.failing_deliveries(session) == {"email": 0, "webhook": 0}


def test_a_delivery_is_given_up_after_the_last_attempt_and_ops_can_retry_it(engine: Engine, mailbox: Mailbox) -> None:
    mailbox.refuse = True
    with session_scope(engine) as session:
        quarantine_notice(session)
    config, now = settings(mailbox), utcnow()
    waits = []
    for _ in range(3):
        outbox.deliver_pending(engine, config, now=now)
        rows = deliveries(engine)
        waits.append(rows[0].next_attempt_at - now)
        now = max(row.next_attempt_at for row in rows)

    assert waits[:2] == [timedelta(seconds=60), timedelta(seconds=120)]
    rows = deliveries(engine)
    assert {(row.status, row.attempts) for row in rows} == {("gave_up", 3)}
    assert {row.last_error for row in rows} == {"SMTPDataError: SMTP 451"}  # no address, no server text
    assert outbox.deliver_pending(engine, config, now=now + timedelta(days=1)).claimed == 0
    with session_scope(engine) as session:
        assert outbox.failing_deliveries(session) == {"email": 2, "webhook": 0}
        assert {row.id for row in outbox.listing(session, failed_only=True)} == {row.id for row in rows}
        retried = outbox.retry_now(session, rows[0].id, "user:ops")
    assert (retried.status, retried.attempts) == ("retrying", 0)

    mailbox.refuse = False
    assert outbox.deliver_pending(engine, config).sent == 1
    assert [to for recipients, _ in mailbox.received for to in recipients] == [retried.target[5:] + "@example.gov.cn"]


def test_the_cap_bounds_the_wait(engine: Engine) -> None:
    config = settings(notification_retry_base_seconds=60, notification_retry_max_seconds=240)
    assert [outbox.backoff(config, attempts).total_seconds() for attempts in range(1, 6)] == [60, 120, 240, 240, 240]


def test_a_rolled_back_event_sends_nothing(engine: Engine, mailbox: Mailbox) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        quarantine_notice(session)
        assert session.scalar(select(NotificationDelivery.id)) is not None  # enqueued in the event's transaction
        raise RuntimeError("the ingestion failed after the notice")

    assert deliveries(engine) == []
    assert outbox.deliver_pending(engine, settings(mailbox)).claimed == 0 and mailbox.received == []


def test_a_missing_secret_or_a_loopback_target_is_an_error_for_ops(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)

    outbox.deliver_pending(engine, settings())
    [row] = [row for row in deliveries(engine) if row.channel == "webhook"]
    assert row.status == "retrying" and row.last_error == (
        f"the environment variable {SECRET_VARIABLE} holding the webhook's secret is not set")  # fmt: skip

    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    outbox.deliver_pending(engine, settings(notification_allowed_hosts=[]), now=row.next_attempt_at)
    [row] = [row for row in deliveries(engine) if row.channel == "webhook"]
    assert "loopback" in str(row.last_error) and webhook.posted == []


def test_drainers_at_the_same_time_send_each_delivery_once(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        for batch in range(12):
            notices.batch_quarantined(session, "PSGA-RK-0001", batch, [])
    config, now = settings(), utcnow()
    reports = []

    def drain() -> None:
        reports.append(outbox.deliver_pending(engine, config, now=now, limit=5))

    for _ in range(3):
        threads = [threading.Thread(target=drain) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    ids = [posted.headers[DELIVERY_HEADER.lower()] for posted in webhook.posted]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sum(report.sent for report in reports) == 12


def test_a_changed_address_is_used_and_a_removed_one_is_given_up(engine: Engine, mailbox: Mailbox) -> None:
    with session_scope(engine) as session:
        quarantine_notice(session)
        channels.set_email(session, "psga-steward", "steward.new@example.gov.cn", "test")
    with session_scope(engine) as session:
        channels.set_email(session, "ops", None, "test")
    try:
        outbox.deliver_pending(engine, settings(mailbox))
    finally:
        with session_scope(engine) as session:
            channels.set_email(session, "psga-steward", "psga-steward@example.gov.cn", "test")
            channels.set_email(session, "ops", "ops@example.gov.cn", "test")
    assert [to for recipients, _ in mailbox.received for to in recipients] == ["steward.new@example.gov.cn"]
    gave_up = [row for row in deliveries(engine) if row.status == "gave_up"]
    assert [(row.target, row.last_error) for row in gave_up] == [
        ("user:ops", "the recipient is inactive or has no e-mail address")]  # fmt: skip


def test_a_drainer_that_dies_after_claiming_leaves_its_deliveries_due_after_the_lease(
    engine: Engine, mailbox: Mailbox
) -> None:
    with session_scope(engine) as session:
        quarantine_notice(session)
    config, now = settings(mailbox), utcnow()
    with session_scope(engine) as session:
        assert len(outbox._claim(session, config, now, limit=10)) == 2  # and then nothing: the drainer is gone
    held = outbox.lease(config, 10)

    assert outbox.deliver_pending(engine, config, now=now + held - timedelta(seconds=1)).claimed == 0
    assert outbox.deliver_pending(engine, config, now=now + held).sent == 2
    assert {(row.status, row.attempts) for row in deliveries(engine)} == {("sent", 2)}


def test_a_deleted_channels_deliveries_end_and_never_reach_a_channel_that_reuses_its_id(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    monkeypatch.setenv("ZSJ_ALERTS_WEBHOOK_SECRET", "zsj-" + SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)
        [gone] = session.scalars(select(NotificationChannel.id))
    with session_scope(engine) as session:
        channels.delete_channel(session, gone, "test")
        # On SQLite the new channel gets the deleted one's id (the highest is reused); PostgreSQL never reuses it.
        channels.create_channel(session, "zsj", ChannelCreate(name="alerts", url=webhook.url), "test")

    outbox.deliver_pending(engine, settings())

    assert webhook.posted == []  # zsj's receiver never gets psga's notice, signed with zsj's secret
    [ended] = deliveries(engine, "webhook")
    assert (ended.status, ended.last_error) == ("gave_up", outbox.CHANNEL_GONE)


def test_a_webhook_goes_only_to_a_channel_of_the_notices_department(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZSJ_ALERTS_WEBHOOK_SECRET", SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)
        zsj = channels.create_channel(session, "zsj", ChannelCreate(name="alerts", url=webhook.url), "test")
        # As a reused id reads: psga's delivery names what is now another department's channel.
        session.execute(update(NotificationDelivery).where(NotificationDelivery.channel == "webhook")
                        .values(target=f"channel:{zsj.id}"))  # fmt: skip

    report = outbox.deliver_pending(engine, settings())

    assert report.gave_up == 1 and webhook.posted == []
    [refused] = deliveries(engine, "webhook")
    assert (refused.status, refused.last_error) == ("gave_up", outbox.OTHER_DEPARTMENT)


def test_a_source_host_allowed_does_not_open_it_to_webhooks(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)

    outbox.deliver_pending(engine, settings(notification_allowed_hosts=[], source_allowed_hosts=["127.0.0.1"]))

    [row] = deliveries(engine, "webhook")
    assert row.status == "retrying" and "loopback" in str(row.last_error) and webhook.posted == []


class Tarpit:
    """A receiver that accepts a webhook and then answers a byte at a time, for ever (well within each read's
    timeout); ``stop`` closes it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/datashare"
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self.listener.accept()
            with connection:
                for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
                    if self.stopped.wait(0.1):
                        return
                    connection.sendall(bytes([byte]))

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


def test_a_receiver_that_trickles_bytes_is_cut_off_at_the_deadline(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    tarpit = Tarpit()
    add_channel(engine, tarpit.url)
    with session_scope(engine) as session:
        quarantine_notice(session)
    reports: list[outbox.DrainReport] = []
    drainer = threading.Thread(target=lambda: reports.append(outbox.deliver_pending(
        engine, settings(notification_timeout_seconds=1))), daemon=True)  # fmt: skip
    started = time.monotonic()
    try:
        drainer.start()
        drainer.join(timeout=15)
        assert not drainer.is_alive(), "the send outlived its deadline"
    finally:
        tarpit.stop()
        drainer.join(timeout=15)

    assert time.monotonic() - started < 5 and reports[0].retrying == 1
    [row] = deliveries(engine, "webhook")
    assert row.last_error == "the webhook did not answer within 1 s"


def test_each_outcome_is_recorded_at_once_so_a_drainer_killed_later_keeps_it(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        for batch in (1, 2):
            notices.batch_quarantined(session, "PSGA-RK-0001", batch, [])
    sent_once = outbox._attempt

    class Killed(BaseException):
        """What a task's execution timeout does to the drainer in the middle of its batch."""

    def attempt(job: Any, config: Settings) -> str | None:
        if webhook.posted:
            raise Killed
        return sent_once(job, config)

    monkeypatch.setattr(outbox, "_attempt", attempt)
    with pytest.raises(Killed):
        outbox.deliver_pending(engine, settings())

    rows = deliveries(engine, "webhook")
    assert [row.status for row in rows] == ["sent", "pending"] and len(webhook.posted) == 1


def test_a_delivery_whose_every_attempt_was_claimed_is_given_up_not_sent_again(
    engine: Engine, webhook: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    add_channel(engine, webhook.start().url)
    with session_scope(engine) as session:
        quarantine_notice(session)
    config, now = settings(), utcnow()
    for _ in range(3):  # three drainers, each killed while sending it: every attempt claimed, none recorded
        with session_scope(engine) as session:
            assert [job.channel for job in outbox._claim(session, config, now, limit=1)] == ["webhook"]
        now += outbox.lease(config, 1)

    report = outbox.deliver_pending(engine, config, now=now)

    assert (report.claimed, report.gave_up) == (0, 1) and webhook.posted == []
    [row] = deliveries(engine, "webhook")
    assert (row.status, row.attempts) == ("gave_up", 3) and "none finished" in str(row.last_error)
