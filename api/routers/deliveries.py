"""Push delivery over HTTP: the consumer's stewards choose a subscription's delivery targets and pause or resume its
deliveries; the consumer's people and ops follow the records of what was sent (ops everywhere, with the failures);
a webhook's download link reads the delivered version, masked and scoped as the subscription's reads are.

Targets are the consumer's business: the provider sees that versions are delivered (the audit, the figures), never
where to. A subscription another department cannot know of is 404, as everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import MAX_ID, GuardDep, Id, PlatformDep, SessionDep
from catalog.access.policy import EVERYWHERE
from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.db import READ_ONLY
from catalog.delivery import service as delivery
from catalog.errors import NotFound
from catalog.push import links, targets
from catalog.push.models import DeliveryTarget, PushDelivery
from catalog.subscriptions import service as subscriptions

router = APIRouter(tags=["deliveries"])
MANAGE, READ = ("delivery_target", "manage"), ("deliveries", "read")


class DeliveryRead(BaseModel):
    id: int
    subscription_id: int
    department: str = Field(description="The consumer.")
    target: str
    kind: str
    item: str
    version: int
    status: Literal["sending", "delivered", "failed"]
    mode: str | None = Field(description="How a database target was written: full or changed (by key).")
    rows: int | None
    attempts: int
    error: str | None = Field(description="Why the last attempt failed, in words fit for ops.")
    trigger: str
    first_tried_at: datetime
    finished_at: datetime | None


class Pause(BaseModel):
    paused: bool


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


def _consumer_of(subscription_id: int, session: SessionDep, guard: GuardDep, *, managing: bool) -> str:
    """The subscription's consumer, if the caller is one of its people who may read (or, ``managing``, manage) its
    targets, or ops reading; else 404 (another department does not learn it exists) or 403."""
    principal = guard.signed_in()
    parties = subscriptions.parties(session, subscription_id)
    if principal.department == parties.consumer:
        guard.require(parties.consumer, *(MANAGE if managing else READ))
        return parties.consumer
    if not managing and guard.allows(EVERYWHERE, *READ):
        return parties.consumer
    raise subscriptions.SubscriptionNotFound(f"subscription {subscription_id} does not exist")


@router.get("/subscriptions/{subscription_id}/targets", response_model=list[targets.TargetRead])
def list_targets(subscription_id: Id, session: SessionDep, guard: GuardDep) -> list[targets.TargetRead]:
    _consumer_of(subscription_id, session, guard, managing=False)
    return targets.of_subscription(session, subscription_id)


@router.post("/subscriptions/{subscription_id}/targets", response_model=targets.TargetRead,
             status_code=status.HTTP_201_CREATED)  # fmt: skip
def add_target(subscription_id: Id, body: targets.TargetCreate, session: SessionDep, guard: GuardDep,
               platform: PlatformDep) -> targets.TargetRead:  # fmt: skip
    """A webhook, a table in the department's own PostgreSQL database, or a file drop, for the subscription's new
    versions. Secrets and connection strings are never sent here: set the environment variable the answer names
    (``secret_variable``) where deliveries run."""
    _consumer_of(subscription_id, session, guard, managing=True)
    with guard.refusals_audited("delivery_target.create", subscription_id=subscription_id):
        return targets.create(session, platform.settings, subscription_id, body, guard.principal)


@router.delete("/delivery-targets/{target_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_target(target_id: Id, session: SessionDep, guard: GuardDep) -> None:
    guard.signed_in()
    with guard.refusals_audited("delivery_target.delete", target_id=target_id):  # a refusal too: audited
        try:
            target, _ = targets.get(session, target_id)
            _consumer_of(target.subscription_id, session, guard, managing=True)
        except (targets.TargetNotFound, subscriptions.SubscriptionNotFound):  # one answer: another's is none of theirs
            raise targets.TargetNotFound(f"delivery target {target_id} does not exist") from None
        targets.delete(session, target_id, guard.principal)


@router.put("/subscriptions/{subscription_id}/deliveries/paused", response_model=Pause)
def pause(subscription_id: Id, body: Pause, session: SessionDep, guard: GuardDep) -> Pause:
    """Pause (true) or resume (false) sending the subscription's new versions; resumed, the next delivery run sends
    the current version to targets that lack it."""
    _consumer_of(subscription_id, session, guard, managing=True)
    return Pause(paused=targets.set_paused(session, subscription_id, body.paused, guard.principal))


@router.get("/deliveries", response_model=list[DeliveryRead])
def list_deliveries(
    session: SessionDep,
    guard: GuardDep,
    status: Literal["sending", "delivered", "failed"] | None = None,
    item: Annotated[str | None, Query(max_length=64)] = None,
    subscription: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryRead]:
    """Newest first. Ops see every department's (``?status=failed``: what needs them); others their department's."""
    principal = guard.signed_in()
    statement = select(PushDelivery).order_by(PushDelivery.id.desc()).limit(limit)
    if not guard.allows(EVERYWHERE, *READ):
        guard.require(str(principal.department), *READ)
        statement = statement.where(PushDelivery.department == principal.department)
    if status is not None:
        statement = statement.where(PushDelivery.status == status)
    if item is not None:
        statement = statement.where(PushDelivery.item_code == item)
    if subscription is not None:
        statement = statement.where(PushDelivery.subscription_id == subscription)
    return [_read(record) for record in session.scalars(statement)]


@router.get("/deliveries/{delivery_id}/data.{file_format}", response_class=StreamingResponse)
def download(delivery_id: Id, file_format: Literal["csv", "parquet"], token: Annotated[str, Query(max_length=200)],
             session: SessionDep, guard: GuardDep, platform: PlatformDep) -> StreamingResponse:  # fmt: skip
    """A webhook notice's download link: the delivered version as the subscription reads it, while the link is valid
    and the subscription active. Audited as a read by the delivery."""
    links.check(platform.settings.secret_key.get_secret_value(), delivery_id, token)
    record = session.get(PushDelivery, delivery_id)
    if record is None:
        raise DeliveryNotFound(f"delivery {delivery_id} does not exist")
    target = session.get(DeliveryTarget, record.target_id) if record.target_id is not None else None
    if target is None or target.deleted_at is not None or target.created_at > record.first_tried_at:
        raise links.InvalidLink("the target this delivery was sent to has been removed: its links no longer work")
    principal = Principal(f"delivery:{record.target_id}", record.department)
    with guard.refusals_audited("data.read", item_code=record.item_code, delivery=delivery_id):
        grant = delivery.grant_for(session, platform.access, principal, record.item_code, record.version)
        if grant.subscription_id != record.subscription_id:
            raise delivery.NoActiveSubscription("the subscription this link was made for has ended")
        rows = delivery.count_rows(session.connection(), grant, {})
    audit.write(session.connection(), audit.event(principal.subject, principal.department, "data.read", "allowed",
                item_code=grant.item, version=grant.version, subscription_id=grant.subscription_id,
                fields_returned=grant.names, fields_masked=grant.masked, rows=rows, format=file_format,
                delivery=delivery_id))  # fmt: skip

    def body() -> Iterator[bytes]:
        with platform.engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            batches = delivery.stream_batches(connection, grant, {})
            if file_format == "csv":
                yield from delivery.csv_chunks(grant, batches)
            else:
                yield from delivery.parquet_chunks(grant, batches)

    name = f"{grant.item}-v{grant.version}.{file_format}"
    media = "text/csv; charset=utf-8" if file_format == "csv" else "application/vnd.apache.parquet"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body(), media_type=media, headers=disposition)


def _read(record: PushDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=record.id, subscription_id=record.subscription_id, department=record.department, target=record.target_name,
        kind=record.kind, item=record.item_code, version=record.version, status=record.status,  # type: ignore[arg-type]
        mode=record.mode, rows=record.rows, attempts=record.attempts, error=record.error, trigger=record.trigger,
        first_tried_at=record.first_tried_at, finished_at=record.finished_at,
    )  # fmt: skip
