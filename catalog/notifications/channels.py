"""Where notifications go besides the platform: a department's webhooks, people's e-mail addresses, and a
subscription's opt-in for new versions. Who may change them is the policy's business (the edges check
``notification_channel manage`` in the channel's department); every change is audited here, in its transaction,
without an address or a secret."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.access.models import UserAccount
from catalog.access.service import Actor, Principal, department_id
from catalog.audit import service as audit
from catalog.departments.models import Department
from catalog.errors import Conflict, DomainError, NotFound
from catalog.notifications.models import NotificationChannel
from catalog.notifications.outbox import end_channel_deliveries
from catalog.subscriptions.models import Subscription

WEBHOOK = "webhook"
CHANNEL_NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"
URL_TEXT = r"^[^\x00-\x20\x7f]+$"  # no spaces or control characters (PostgreSQL text cannot hold NUL)
EMAIL_ADDRESS = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_CHANNELS_PER_DEPARTMENT = 5  # each is a send per notice and a secret to keep: a drainer's work stays bounded


class ChannelNotFound(NotFound):
    code = "notification_channel_not_found"


class ChannelExists(Conflict):
    code = "notification_channel_exists"


class SecretVariableTaken(Conflict):
    code = "notification_channel_secret_variable_taken"


class TooManyChannels(Conflict):
    code = "notification_channel_limit"


class InvalidChannel(DomainError):
    code = "invalid_notification_channel"


class InvalidEmail(DomainError):
    code = "invalid_email"


class UserNotFound(NotFound):
    code = "user_not_found"


class ChannelCreate(BaseModel):
    name: str = Field(pattern=CHANNEL_NAME, description="Lower-case letters, digits, hyphens; unique per department.")
    url: str = Field(min_length=8, max_length=2000, pattern=URL_TEXT, description="http(s) URL notices are POSTed to.")
    enabled: bool = True


class ChannelUpdate(BaseModel):
    url: str | None = Field(default=None, min_length=8, max_length=2000, pattern=URL_TEXT)
    enabled: bool | None = None


class ChannelRead(BaseModel):
    id: int
    department: str
    name: str
    kind: str
    url: str
    secret_variable: str = Field(description="The environment variable of the API and workers holding the secret.")
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class NewVersionNotices(BaseModel):
    enabled: bool


class NewVersionNoticesRead(BaseModel):
    subscription_id: int
    notify_new_versions: bool


def webhook_secret_variable(department: str, name: str) -> str:
    """The environment variable holding a webhook's signing secret: ``<DEPARTMENT>_<NAME>_WEBHOOK_SECRET``. Derived,
    never chosen, so no one can point a channel at another secret of the platform's environment."""
    return f"{department}_{name}_WEBHOOK_SECRET".upper().replace("-", "_")


def create_channel(session: Session, department: str, body: ChannelCreate, actor: Actor) -> ChannelRead:
    """Add a department's webhook: at most ``MAX_CHANNELS_PER_DEPARTMENT``, and never one whose secret variable is
    another channel's (``psga`` + ``fj-hook`` and ``psga-fj`` + ``hook`` both make ``PSGA_FJ_HOOK_…``)."""
    owner, variable = department_id(session, department), webhook_secret_variable(department, body.name)
    _check_room(session, owner, department)
    if session.scalar(select(NotificationChannel.id).where(NotificationChannel.secret_variable == variable)):
        raise SecretVariableTaken(f"the secret variable {variable} is already another channel's (department codes "
                                  "and names may meet at a hyphen): choose another name")  # fmt: skip
    channel = NotificationChannel(
        department_id=owner, name=body.name, kind=WEBHOOK, url=_checked_url(body.url), secret_variable=variable,
        enabled=body.enabled, created_by=_principal(actor).subject,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(channel)
            session.flush()
    except IntegrityError:  # the same name, or a secret variable taken meanwhile
        raise ChannelExists(f"{department} already has a channel named {body.name}, or its secret variable "
                            f"{variable} is taken") from None  # fmt: skip
    _audit(session, actor, "notification_channel.create", channel, department, enabled=channel.enabled)
    return _read(channel, department)


def update_channel(session: Session, channel_id: int, body: ChannelUpdate, actor: Actor) -> ChannelRead:
    channel, department = _get(session, channel_id)
    if body.url is not None:
        channel.url = _checked_url(body.url)
    if body.enabled is not None:
        channel.enabled = body.enabled
    session.flush()
    _audit(session, actor, "notification_channel.update", channel, department, enabled=channel.enabled,
           url_changed=body.url is not None)  # fmt: skip
    return _read(channel, department)


def delete_channel(session: Session, channel_id: int, actor: Actor) -> None:
    channel, department = _get(session, channel_id)
    ended = end_channel_deliveries(session, channel.id)  # its id may be reused: nothing due may follow it
    _audit(session, actor, "notification_channel.delete", channel, department, deliveries_ended=ended)
    session.delete(channel)
    session.flush()


def channels_of(session: Session, department: str | None) -> list[ChannelRead]:
    """A department's channels (None: every department's)."""
    statement = select(NotificationChannel, Department.code).join(
        Department, Department.id == NotificationChannel.department_id
    )
    if department is not None:
        statement = statement.where(Department.code == department)
    rows = session.execute(statement.order_by(Department.code, NotificationChannel.name))
    return [_read(channel, code) for channel, code in rows]


def department_of_channel(session: Session, channel_id: int) -> str:
    return _get(session, channel_id)[1]


def set_email(session: Session, username: str, address: str | None, actor: Actor) -> None:
    """Set (or, with None, clear) the address a user's notifications are mailed to; audited without it."""
    if address is not None and not EMAIL_ADDRESS.match(address):
        raise InvalidEmail("not an e-mail address")
    user = session.scalar(select(UserAccount).where(UserAccount.username == username))
    if user is None:
        raise UserNotFound(f"no user {username}")
    user.email = address
    session.flush()
    who = _principal(actor)
    audit.record(session, who.subject, who.department, "user.email", "done", username=username,
                 email_set=address is not None)  # fmt: skip


def set_new_version_notices(
    session: Session, subscription_id: int, enabled: bool, actor: Actor
) -> NewVersionNoticesRead:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} does not exist")
    subscription.notify_new_versions = enabled
    session.flush()
    who = _principal(actor)
    audit.record(session, who.subject, who.department, "subscription.notify_new_versions", "done",
                 subscription_id=subscription_id, enabled=enabled)  # fmt: skip
    return NewVersionNoticesRead(subscription_id=subscription_id, notify_new_versions=enabled)


def _check_room(session: Session, owner: int, department: str) -> None:
    held = (
        session.scalar(select(func.count(NotificationChannel.id)).where(NotificationChannel.department_id == owner))
        or 0
    )
    if held >= MAX_CHANNELS_PER_DEPARTMENT:
        raise TooManyChannels(f"{department} has {held} channels, the most a department may have: delete one first")


def _checked_url(url: str) -> str:
    """An http(s) URL with a host and no credentials in it (a secret belongs in the environment)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidChannel("a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise InvalidChannel("a webhook URL carries no user or password: the signature authenticates the platform")
    return url


def _get(session: Session, channel_id: int) -> tuple[NotificationChannel, str]:
    found = session.execute(
        select(NotificationChannel, Department.code)
        .join(Department, Department.id == NotificationChannel.department_id)
        .where(NotificationChannel.id == channel_id)
    ).one_or_none()
    if found is None:
        raise ChannelNotFound(f"no notification channel {channel_id}")
    return found[0], found[1]


def _principal(actor: Actor) -> Principal:
    return actor if isinstance(actor, Principal) else Principal(actor, None)


def _audit(
    session: Session, actor: Actor, action: str, channel: NotificationChannel, department: str, **detail: object
) -> None:
    who = _principal(actor)
    audit.record(session, who.subject, who.department, action, "done", on_behalf_of=department, channel_id=channel.id,
                 channel=channel.name, **detail)  # fmt: skip


def _read(channel: NotificationChannel, department: str) -> ChannelRead:
    return ChannelRead(
        id=channel.id, department=department, name=channel.name, kind=channel.kind, url=channel.url,
        secret_variable=channel.secret_variable, enabled=channel.enabled, created_by=channel.created_by,
        created_at=channel.created_at, updated_at=channel.updated_at,
    )  # fmt: skip
