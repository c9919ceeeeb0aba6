"""Sending one delivery: e-mail over SMTP (Chinese first, then English) and webhooks signed with HMAC-SHA256.

A webhook is a POST of the notice as JSON with three headers: ``X-Datashare-Delivery`` (the delivery's id: the
same on every retry, so a receiver can drop a second copy), ``X-Datashare-Timestamp`` (Unix seconds) and
``X-Datashare-Signature`` (``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>`` under the channel's secret).
A receiver recomputes it over the raw body, compares in constant time, and rejects a timestamp more than five
minutes from its clock (a replay): ``verify_signature`` is that check. Nothing here logs or returns a secret, an
address or a message: ``describe`` says what failed in words fit for ops. A webhook's send ends at its deadline
(``notification_timeout_seconds`` in all), whatever the receiver does: httpx's timeout bounds each read, so a
receiver trickling a byte at a time could otherwise hold a drainer for ever.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from catalog import logsafe
from catalog.errors import DomainError
from catalog.ingest.source_safety import CheckedTransport, UnsafeSourceLocation
from catalog.settings import Settings

DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "X-Datashare-Delivery", "X-Datashare-Timestamp", "X-Datashare-Signature",
)  # fmt: skip
SIGNATURE_VERSION = "v1="
REPLAY_TOLERANCE_SECONDS = 300
MAX_ERROR_LENGTH = 300
TITLES: dict[str, tuple[str, str]] = {
    "subscription_awaits_approval": ("订阅申请待审批", "A subscription request awaits approval"),
    "subscription_decided": ("订阅申请已有决定", "A subscription request was decided"),
    "subscription_expiring": ("订阅将于 7 天内到期", "A subscription expires within 7 days"),
    "subscription_expired": ("订阅已到期", "A subscription has expired"),
    "classification_raised": ("字段分级已提高，相关字段自即日起脱敏", "A field's classification level was raised"),
    "batch_quarantined": ("批次已隔离", "A batch was quarantined"),
    "item_late": ("数据项未按时更新", "An item is late"),
    "detection_digest": ("新的敏感字段检测建议（每日汇总）", "New detection proposals (daily digest)"),
    "version_published": ("订阅的数据项有新版本", "A new version of a subscribed item"),
    "delivery_failed": ("推送失败", "A delivery failed"),
}


class DeliveryFailed(DomainError):
    code = "delivery_failed"


@dataclass(frozen=True)
class Content:
    """What a notification says, as every channel sends it."""

    notification_id: int
    kind: str
    department: str | None
    item_code: str | None
    subscription_id: int | None
    message: str
    detail: dict[str, Any]
    created_at: datetime


def subject(content: Content) -> str:
    chinese, english = TITLES.get(content.kind, ("平台通知", "Platform notice"))
    about = f" {content.item_code}" if content.item_code else ""
    return f"[datashare] {chinese} / {english}{about}"


def mail_body(content: Content, settings: Settings) -> str:
    chinese, english = TITLES.get(content.kind, ("平台通知", "Platform notice"))
    link = f"{settings.public_url.rstrip('/')}/notifications"
    return (
        f"{chinese}\n{english}\n\n{content.message}\n\n"
        f"在平台查看 / View it on the platform: {link}\n"
        "此邮件由数据共享平台自动发送，请勿回复。 / Sent by the data-sharing platform; please do not reply.\n"
    )


def webhook_body(content: Content, delivery_id: int, settings: Settings) -> bytes:
    chinese, english = TITLES.get(content.kind, ("平台通知", "Platform notice"))
    payload = {
        "delivery": delivery_id, "notification": content.notification_id, "kind": content.kind,
        "title": {"zh": chinese, "en": english}, "department": content.department, "item": content.item_code,
        "subscription": content.subscription_id, "message": content.message, "detail": content.detail,
        "created_at": content.created_at.isoformat(),
        "link": f"{settings.public_url.rstrip('/')}/notifications",
    }  # fmt: skip
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def send_mail(settings: Settings, address: str, content: Content) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = address
    message["Subject"] = subject(content)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    message.set_content(mail_body(content, settings))
    host, timeout = str(settings.smtp_host), settings.notification_timeout_seconds
    context = ssl.create_default_context()
    if settings.smtp_security == "ssl":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(host, settings.smtp_port, timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
    with connection:
        if settings.smtp_security == "starttls":
            connection.starttls(context=context)
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            connection.login(settings.smtp_username, password)
        connection.send_message(message)


def send_webhook(settings: Settings, url: str, secret: str, body: bytes, delivery_id: int) -> None:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body),
    }  # fmt: skip
    # Only the notification hosts: a host allowed for sources (a loopback export server) is no webhook's business.
    transport = CheckedTransport(settings.notification_allowed_hosts)
    seconds = settings.notification_timeout_seconds
    deadline = Deadline(seconds)
    try:
        # Streamed and left unread: the status is all we need, so a body trickled for ever holds nothing.
        with (
            httpx.Client(transport=transport, timeout=seconds) as client,
            deadline,
            client.stream("POST", url, content=body, headers=headers, extensions={"trace": deadline.trace}) as response,
        ):
            status = response.status_code
    except httpx.TransportError:
        if deadline.expired:
            raise DeliveryFailed(f"the webhook did not answer within {seconds:g} s") from None
        raise
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the webhook answered HTTP {status}")


class Deadline:
    """Ends a request at a deadline: when it passes, the connection's socket is shut down, which wakes a read the
    server keeps alive a byte at a time (httpx's own timeout restarts with every byte read). The socket comes from
    httpx's ``trace`` extension as the connection is made (and again when TLS wraps it)."""

    CONNECTED = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in self.CONNECTED:
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")
                if self.expired:  # connected just as the time ran out
                    self._shut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):  # closed already: the request ended meanwhile
                self._socket.shutdown(socket.SHUT_RDWR)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_VERSION + digest


def verify_signature(
    secret: str, timestamp: str, body: bytes, signed: str, now: float | None = None,
    tolerance: int = REPLAY_TOLERANCE_SECONDS,
) -> bool:  # fmt: skip
    """What a receiver checks: the signature over the raw body, and a timestamp close to its clock."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), signed)


def describe(error: BaseException) -> str:
    """What failed, for ops: SMTP replies by code (their text may quote the address), our own refusals as they
    are, anything else by type and a redacted message."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = f"{type(error).__name__}: SMTP {error.smtp_code}"
    elif isinstance(error, smtplib.SMTPRecipientsRefused):
        text = "SMTPRecipientsRefused: the server refused the recipient"
    elif isinstance(error, DeliveryFailed | UnsafeSourceLocation):
        text = error.message
    elif isinstance(error, httpx.TimeoutException | TimeoutError):
        text = f"{type(error).__name__}: no answer in time"
    else:
        text = logsafe.redacted_message(error)
    return text[:MAX_ERROR_LENGTH]
