"""Notifications: each caller reads those addressed to them (their department's people or stewards, data officers,
ops; another audience's notification is 404, as if it did not exist); a department's stewards (and platform admins)
manage its webhooks (another department's webhook is 404 too); ops list failed deliveries and retry them; a consumer
opts in to notices of new versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import GuardDep, Id, SessionDep
from catalog.access.policy import EVERYWHERE
from catalog.departments.schemas import CODE_PATTERN
from catalog.errors import NotFound
from catalog.notifications import audiences, channels, outbox, service
from catalog.notifications.channels import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    NewVersionNotices,
    NewVersionNoticesRead,
)
from catalog.notifications.outbox import DeliveryRead
from catalog.notifications.service import NotificationRead
from catalog.subscriptions.service import parties

router = APIRouter(prefix="/notifications", tags=["notifications"])
CHANNELS = ("notification_channel", "manage")
DELIVERIES = ("notification", "operate")
Department = Annotated[
    str | None, Query(max_length=32, pattern=CODE_PATTERN, description="Default: the caller's department.")
]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("", response_model=list[NotificationRead])
def listing(session: SessionDep, guard: GuardDep, unread: bool = False, limit: Limit = 100) -> list[NotificationRead]:
    """The notifications addressed to the caller, newest first (only unread ones with ``unread=true``)."""
    _reader(guard)
    held = audiences.visible_to(session, guard.principal.subject)
    return service.for_audiences(session, held, unread_only=unread, limit=limit)


@router.post("/{notification_id}/read", response_model=NotificationRead)
def mark_read(notification_id: Id, session: SessionDep, guard: GuardDep) -> NotificationRead:
    _reader(guard)
    with guard.refusals_audited("notification.read", notification_id=notification_id):
        return service.mark_read(session, audiences.visible_to(session, guard.principal.subject), notification_id)


@router.get("/channels", response_model=list[ChannelRead])
def channel_listing(session: SessionDep, guard: GuardDep, department: Department = None) -> list[ChannelRead]:
    """A department's webhooks (stewards of the department, platform admins)."""
    code = department or str(guard.signed_in().department)
    guard.require(code, *CHANNELS)
    return channels.channels_of(session, code)


@router.post("/channels", response_model=ChannelRead, status_code=201)
def create_channel(
    body: ChannelCreate, session: SessionDep, guard: GuardDep, department: Department = None
) -> ChannelRead:
    """Add a webhook. Its signing secret is read from the environment variable named in ``secret_variable``
    (derived from the department and the name): set it where the workers run; it is never stored here."""
    code = department or str(guard.signed_in().department)
    guard.require(code, *CHANNELS)
    with guard.refusals_audited("notification_channel.create", on_behalf_of=code):
        return channels.create_channel(session, code, body, guard.principal)


@router.patch("/channels/{channel_id}", response_model=ChannelRead)
def update_channel(channel_id: Id, body: ChannelUpdate, session: SessionDep, guard: GuardDep) -> ChannelRead:
    """Change a webhook's URL, or enable or disable it."""
    _require_channel(session, guard, channel_id)
    with guard.refusals_audited("notification_channel.update", channel_id=channel_id):
        return channels.update_channel(session, channel_id, body, guard.principal)


@router.delete("/channels/{channel_id}", status_code=204)
def delete_channel(channel_id: Id, session: SessionDep, guard: GuardDep) -> Response:
    _require_channel(session, guard, channel_id)
    channels.delete_channel(session, channel_id, guard.principal)
    return Response(status_code=204)


@router.get("/deliveries", response_model=list[DeliveryRead])
def delivery_listing(
    session: SessionDep, guard: GuardDep, failed: bool = False, limit: Limit = 100
) -> list[DeliveryRead]:
    """Deliveries of notifications, newest first; ``failed=true``: those retrying or given up (ops)."""
    guard.require(EVERYWHERE, *DELIVERIES)
    return outbox.listing(session, failed_only=failed, limit=limit)


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryRead)
def retry_delivery(delivery_id: Id, session: SessionDep, guard: GuardDep) -> DeliveryRead:
    """Make a failing delivery due at once (a given-up one starts its attempts again); ops, audited."""
    guard.require(EVERYWHERE, *DELIVERIES)
    with guard.refusals_audited("notification.retry", delivery_id=delivery_id):
        return outbox.retry_now(session, delivery_id, guard.principal)


@router.put("/subscriptions/{subscription_id}/new-versions", response_model=NewVersionNoticesRead)
def new_version_notices(
    subscription_id: Id, body: NewVersionNotices, session: SessionDep, guard: GuardDep
) -> NewVersionNoticesRead:
    """The consumer's opt-in for a notice of each new version of the subscribed item (its people who may request
    subscriptions). Another department's subscription is 404."""
    own = str(guard.signed_in().department)
    with guard.refusals_audited("subscription.notify_new_versions", subscription_id=subscription_id):
        if parties(session, subscription_id).consumer != own:
            raise NotFound(f"subscription {subscription_id} does not exist")
    guard.require(own, "subscription", "request")
    return channels.set_new_version_notices(session, subscription_id, body.enabled, guard.principal)


def _reader(guard: GuardDep) -> None:
    guard.require(str(guard.signed_in().department), "notification", "read")


def _require_channel(session: SessionDep, guard: GuardDep, channel_id: int) -> None:
    """Another department's channel is 404, as a missing one is (audited as a refusal): ids are not enumerable."""
    guard.signed_in()
    with guard.refusals_audited("notification_channel.manage", channel_id=channel_id):
        department = channels.department_of_channel(session, channel_id)
        if not guard.allows(department, *CHANNELS):
            raise channels.ChannelNotFound(f"no notification channel {channel_id}")
