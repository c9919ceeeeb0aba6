"""The subscription workflow: a consumer department asks for an item's fields; the rules decide who approves.

* not-shared items cannot be requested; only published items can;
* an unconditional item whose requested fields are all at or below ``auto_approve_max_level`` is active at once;
* anything else needs the provider's steward, and requests reaching ``officer_level`` a data officer after them;
* rejected (with a reason) while pending; revoked (with a reason) while active, by the provider, an officer or
  the consumer; expired when its period ends (reads check the end themselves; a scheduled task records it).

Every change is a compare-and-set on the status, so two decisions racing leave one consistent state, and is
audited in the same transaction. Who may act is the policy's business (the API checks it); this module checks
what may happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.access.changes import ITEM, note_change
from catalog.access.service import Principal, department_id
from catalog.audit import service as audit
from catalog.classification import stewardship
from catalog.classification.types import DataType
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import Conflict, DomainError, InvalidTransition, NotFound
from catalog.items import repository as items_repository
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import FieldDeclaration, ItemStatus, SharingType
from catalog.notifications import notices
from catalog.subscriptions import scopes
from catalog.subscriptions.models import Subscription


class SubscriptionStatus(StrEnum):
    REQUESTED = "requested"
    PROVIDER_APPROVED = "provider_approved"
    ACTIVE = "active"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


SCHEDULER = Principal("scheduler", None)
OPEN = (SubscriptionStatus.REQUESTED, SubscriptionStatus.PROVIDER_APPROVED, SubscriptionStatus.ACTIVE)


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


class ItemNotShared(DomainError):
    code = "item_not_shared"


class SubscriptionExists(Conflict):
    code = "subscription_exists"


REAPPROVAL_REQUESTED, REAPPROVAL_PROVIDER_APPROVED = "requested", "provider_approved"
_NO_REAPPROVAL = {"reapproval_status": None, "reapproval_level": None, "reapproval_requested_by": None,
                  "reapproval_requested_at": None, "renewal_days": None}  # fmt: skip


class IllegalSubscriptionChange(InvalidTransition):
    code = "illegal_subscription_change"


class InvalidRequest(DomainError):
    code = "invalid_subscription_request"


class SubscriptionCreate(BaseModel):
    item: str = Field(min_length=1, max_length=64)
    fields: list[str] = Field(min_length=1, max_length=500)
    purpose: str = Field(min_length=4, max_length=2000)
    legal_basis: str = Field(min_length=4, max_length=2000)
    period_days: int = Field(ge=1, le=3660)
    notify_new_versions: bool = Field(default=False, description="Notify the consumer of each new version.")
    kind: Literal["read", "verify"] = Field(
        default="read",
        description="read: the fields' data (pages, downloads); verify: look-ups of records the consumer holds by "
        "the item's key, answering match or no match and, for a match, these fields (masked as reads are).",
    )
    scope: scopes.Scope | None = Field(
        default=None,
        description='The rows asked for, e.g. {"所属街道": {"in": ["坪山街道"]}, "登记日期": {"from": "2024-01-01"}}: '
        "each condition is in (a list of values) or a range (from and/or to, inclusive); a row meets them all. "
        "The provider's steward may narrow it at approval. None: every row.",
    )

    @field_validator("fields")
    @classmethod
    def _distinct(cls, fields: list[str]) -> list[str]:
        if len(set(fields)) != len(fields):
            raise ValueError("a field is named twice")
        return fields


class SubscriptionRead(BaseModel):
    id: int
    item: str
    provider: str
    consumer: str
    status: SubscriptionStatus
    kind: str = "read"
    fields: list[str]
    level: int = Field(description="The highest level among the requested fields when the request was made.")
    approved_level: int | None
    purpose: str
    legal_basis: str
    period_days: int
    requested_by: str
    requested_at: datetime
    provider_decided_by: str | None
    officer_decided_by: str | None
    active_from: datetime | None
    expires_at: datetime | None
    ended_by: str | None
    reason: str | None
    needs_officer: bool
    masked_fields: list[str] = Field(
        description="Fields masked whatever their level, until the subscription is re-approved: those masked when "
        "it was approved and those raised above its approved level since."
    )
    reapproval_status: str | None = Field(description="requested or provider_approved while a re-approval is pending")
    reapproval_level: int | None
    renewal_days: int | None = Field(
        default=None, description="The days a pending re-approval adds to the period: a renewal."
    )
    requested_scope: dict[str, Any] | None = Field(default=None, description="The rows the consumer asked for.")
    deliveries_paused: bool = Field(default=False, description="Push delivery to its targets paused by the consumer.")
    scope: dict[str, Any] | None = Field(
        default=None,
        description="The rows granted (as asked for, or as the provider narrowed them): they hold in every read, "
        "count, look-up and delivery. None: every row.",
    )


@dataclass(frozen=True)
class Rules:
    auto_approve_max_level: int
    officer_level: int
    max_days: int


@dataclass(frozen=True)
class Parties:
    """The departments a subscription concerns: who asks and who provides."""

    consumer: str
    provider: str


def request(session: Session, rules: Rules, body: SubscriptionCreate, actor: Principal) -> SubscriptionRead:
    consumer = str(actor.department)
    stored = items_repository.get_by_code_or_raise(session, body.item)
    item = stored.declaration
    if stored.status is not ItemStatus.PUBLISHED:  # unpublished items are not the consumer's to know about
        raise ItemNotFound(item.code)
    if item.sharing_type is SharingType.NOT_SHARED:
        raise ItemNotShared(f"item {item.code} is not shared (不予共享): it cannot be subscribed to")
    if item.department == consumer:
        raise InvalidRequest(
            f"item {item.code} belongs to {consumer}: a department needs no subscription to its own data"
        )
    if body.period_days > rules.max_days:
        raise InvalidRequest(f"a subscription runs at most {rules.max_days} days")
    levels = {field.name: field.level for field in item.fields}
    unknown = [name for name in body.fields if name not in levels]
    if unknown:
        raise InvalidRequest(f"item {item.code} has no field(s) {', '.join(unknown)}")
    unreviewed = stewardship.never_approved(session, stored.id, body.fields)
    if unreviewed:
        raise InvalidRequest(
            f"field(s) {', '.join(unreviewed)} of item {item.code} await a data officer's classification review "
            "and cannot be subscribed to yet"
        )
    consumer_id = department_id(session, consumer)
    expire_due(session, item_id=stored.id, consumer_id=consumer_id)  # an ended one no longer stands in the way
    if session.scalar(_open_of(stored.id, consumer_id)) is not None:
        raise SubscriptionExists(f"{consumer} already has an open subscription to {item.code}")
    level = decided_level(item.fields, body.fields, body.kind)
    types = {field.name: field.data_type for field in item.fields}
    scope = scopes.stored(body.scope, types)
    scopes.within_fields(scope, body.fields)
    scopes.storable_here(scope, types, session.get_bind().dialect.name)
    subscription = Subscription(
        item_id=stored.id,
        consumer_department_id=consumer_id,
        status=SubscriptionStatus.REQUESTED,
        fields=list(body.fields),
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        period_days=body.period_days,
        requested_by=actor.subject,
        notify_new_versions=body.notify_new_versions,
        kind=body.kind,
        requested_scope=scope,
        scope=scope,
    )
    try:
        with session.begin_nested():  # a request racing this one may have been stored meanwhile
            session.add(subscription)
            session.flush()
    except IntegrityError:
        raise SubscriptionExists(f"{consumer} already has an open subscription to {item.code}") from None
    automatic = item.sharing_type is SharingType.UNCONDITIONAL and level <= rules.auto_approve_max_level
    if automatic:
        _activate(session, subscription, level)
    _audit(session, subscription, actor, "subscription.request", item.code, automatic=automatic, level=level,
           **({"scope": scope} if scope else {}))  # fmt: skip
    notices.subscription_changed(session, subscription.id)
    return read(session, rules, subscription.id)


def approve(
    session: Session,
    rules: Rules,
    subscription_id: int,
    actor: Principal,
    as_officer: bool,
    level: int | None = None,
    scope: scopes.Scope | None = None,
) -> SubscriptionRead:
    """The provider's approval of a request, or (as_officer) the officer's of a provider-approved one. Either
    may approve up to a lower level than requested (the lower one holds): fields above it are then masked; and
    either may set the rows granted (``scope``), within those asked for (or approved by the provider)."""
    current = read(session, rules, subscription_id)
    if as_officer:
        expected, target = SubscriptionStatus.PROVIDER_APPROVED, SubscriptionStatus.ACTIVE
        decided = {"officer_decided_by": actor.subject, "officer_decided_at": utcnow()}
    else:
        expected = SubscriptionStatus.REQUESTED
        target = SubscriptionStatus.PROVIDER_APPROVED if current.needs_officer else SubscriptionStatus.ACTIVE
        decided = {"provider_decided_by": actor.subject, "provider_decided_at": utcnow()}
    if current.status is not expected:
        who = "an officer" if as_officer else "the provider"
        raise IllegalSubscriptionChange(
            f"subscription {subscription_id} is {current.status.value}: {who} cannot approve it"
        )
    values: dict[str, Any] = {"status": target, **decided}
    if scope is not None:
        values["scope"] = _narrowed(session, current, scope)
    cap = current.approved_level if current.approved_level is not None else current.level  # the provider's, if any
    if level is not None:
        cap = min(cap, level)
    _scope_unmasked(session, current, values.get("scope", current.scope), cap)
    if target is SubscriptionStatus.PROVIDER_APPROVED:
        values["approved_level"] = cap  # the officer may lower it further, never raise it
    if target is SubscriptionStatus.ACTIVE:
        now = utcnow()
        values |= {
            "approved_level": cap,
            "masked_fields": masked_at(session, current, cap),
            "active_from": now,
            "expires_at": now + timedelta(days=current.period_days),
        }
    _change(session, subscription_id, expected, values)
    action = "subscription.approve_officer" if as_officer else "subscription.approve_provider"
    _audit(session, subscription_id, actor, action, current.item, to=target.value, level=values.get("approved_level"),
           **({"scope": values["scope"]} if "scope" in values else {}))  # fmt: skip
    notices.subscription_changed(session, subscription_id)
    return read(session, rules, subscription_id)


def _narrowed(session: Session, current: SubscriptionRead, scope: scopes.Scope) -> dict[str, Any] | None:
    """The scope an approval grants: within what was asked for (and what the provider approved)."""
    rows = session.execute(
        select(ItemField.name, ItemField.data_type)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .where(CatalogItem.code == current.item)
    )
    types = {name: DataType(data_type) for name, data_type in rows}
    granted = scopes.stored(scope, types)
    scopes.within_fields(granted, current.fields)
    scopes.storable_here(granted, types, session.get_bind().dialect.name)
    if not scopes.narrows(granted, current.scope, types):
        raise scopes.InvalidScope(
            f"the scope approved must lie within the rows asked for ({scopes.describe(current.scope)}): an approval "
            "may narrow a scope, never widen it"
        )
    return granted


def _scope_unmasked(session: Session, current: SubscriptionRead, scope: dict[str, Any] | None, cap: int) -> None:
    """The scope's fields shown unmasked at the level approved (else the approval is refused)."""
    if scope:
        scopes.unmasked_at(scope, levels_of(session, current.item), cap)


def levels_of(session: Session, item_code: str) -> dict[str, int]:
    rows = session.execute(
        select(ItemField.name, ItemField.level)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .where(CatalogItem.code == item_code)
    )
    return {name: level for name, level in rows}


def masked_at(session: Session, current: SubscriptionRead, cap: int) -> list[str]:
    """The subscription's fields above the level it is approved at: masked until it is approved again."""
    levels = levels_of(session, current.item)
    return sorted(name for name in current.fields if levels.get(name, 0) > cap)


def reject(session: Session, rules: Rules, subscription_id: int, actor: Principal, reason: str) -> SubscriptionRead:
    current = read(session, rules, subscription_id)
    if current.status not in (SubscriptionStatus.REQUESTED, SubscriptionStatus.PROVIDER_APPROVED):
        raise IllegalSubscriptionChange(
            f"subscription {subscription_id} is {current.status.value}: it cannot be rejected"
        )
    _end(session, current, SubscriptionStatus.REJECTED, actor, reason)
    return read(session, rules, subscription_id)


def revoke(session: Session, rules: Rules, subscription_id: int, actor: Principal, reason: str) -> SubscriptionRead:
    current = read(session, rules, subscription_id)
    if current.status is not SubscriptionStatus.ACTIVE:
        raise IllegalSubscriptionChange(
            f"subscription {subscription_id} is {current.status.value}: only an active one can be revoked"
        )
    _end(session, current, SubscriptionStatus.REVOKED, actor, reason)
    return read(session, rules, subscription_id)


def expire_due(
    session: Session, now: datetime | None = None, item_id: int | None = None, consumer_id: int | None = None
) -> list[int]:
    """Mark active subscriptions whose period has ended as expired (the scheduled task, or one pair of item and
    consumer before a new request); their ids."""
    now = now or utcnow()
    statement = select(Subscription.id).where(
        Subscription.status == SubscriptionStatus.ACTIVE, Subscription.expires_at <= now
    )
    if item_id is not None:
        statement = statement.where(Subscription.item_id == item_id)
    if consumer_id is not None:
        statement = statement.where(Subscription.consumer_department_id == consumer_id)
    due = list(session.scalars(statement))
    expired = []
    for subscription_id in due:
        if _change(
            session,
            subscription_id,
            SubscriptionStatus.ACTIVE,
            {"status": SubscriptionStatus.EXPIRED, "ended_by": "scheduler", "ended_at": now, **_NO_REAPPROVAL},
            strict=False,
        ):
            expired.append(subscription_id)
            _audit(session, subscription_id, SCHEDULER, "subscription.expire", None)
            notices.subscription_changed(session, subscription_id)
    return expired


def parties(session: Session, subscription_id: int) -> Parties:
    row = session.execute(
        select(Department.code, CatalogItem.department_id)
        .select_from(Subscription)
        .join(Department, Subscription.consumer_department_id == Department.id)
        .join(CatalogItem, Subscription.item_id == CatalogItem.id)
        .where(Subscription.id == subscription_id)
    ).one_or_none()
    if row is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} does not exist")
    provider = session.scalar(select(Department.code).where(Department.id == row[1]))
    return Parties(consumer=row[0], provider=str(provider))


def read(session: Session, rules: Rules, subscription_id: int) -> SubscriptionRead:
    reads = _reads(session, rules, select(Subscription).where(Subscription.id == subscription_id))
    if not reads:
        raise SubscriptionNotFound(f"subscription {subscription_id} does not exist")
    return reads[0]


def listing(
    session: Session, rules: Rules, department: str | None, status: SubscriptionStatus | None = None, limit: int = 100
) -> list[SubscriptionRead]:
    """Subscriptions a department takes part in, as consumer or provider (None: all of them), newest first."""
    statement = select(Subscription).order_by(Subscription.id.desc()).limit(limit)
    if department is not None:
        own = department_id(session, department)
        provided = select(CatalogItem.id).where(CatalogItem.department_id == own)
        statement = statement.where(or_(Subscription.consumer_department_id == own, Subscription.item_id.in_(provided)))
    if status is not None:
        statement = statement.where(Subscription.status == status)
    return _reads(session, rules, statement)


def _reads(session: Session, rules: Rules, statement: Select[Any]) -> list[SubscriptionRead]:
    subscriptions = list(session.scalars(statement))
    if not subscriptions:
        return []
    item_ids = {subscription.item_id for subscription in subscriptions}
    codes = session.scalars(select(CatalogItem.code).where(CatalogItem.id.in_(item_ids)))
    items = {stored.id: stored for stored in items_repository.load_items(session, list(codes)).values()}
    departments = {row.id: row.code for row in session.execute(select(Department.id, Department.code))}
    reads = []
    for subscription in subscriptions:
        stored = items[subscription.item_id]
        level = decided_level(stored.declaration.fields, subscription.fields, subscription.kind)
        reads.append(
            SubscriptionRead(
                id=subscription.id,
                item=stored.declaration.code,
                provider=stored.declaration.department,
                consumer=departments[subscription.consumer_department_id],
                status=SubscriptionStatus(subscription.status),
                kind=subscription.kind,
                fields=list(subscription.fields),
                level=level,
                approved_level=subscription.approved_level,
                purpose=subscription.purpose,
                legal_basis=subscription.legal_basis,
                period_days=subscription.period_days,
                requested_by=subscription.requested_by,
                requested_at=subscription.requested_at,
                provider_decided_by=subscription.provider_decided_by,
                officer_decided_by=subscription.officer_decided_by,
                active_from=subscription.active_from,
                expires_at=subscription.expires_at,
                ended_by=subscription.ended_by,
                reason=subscription.reason,
                needs_officer=level >= rules.officer_level,
                masked_fields=list(subscription.masked_fields or []),
                reapproval_status=subscription.reapproval_status,
                reapproval_level=subscription.reapproval_level,
                renewal_days=subscription.renewal_days,
                requested_scope=subscription.requested_scope,
                deliveries_paused=subscription.deliveries_paused,
                scope=subscription.scope,
            )
        )
    return reads


def decided_level(declared: Sequence[FieldDeclaration], fields: Sequence[str], kind: str) -> int:
    """The level a request is decided at: its fields' highest; for verification, the key's too (a look-up by the key
    answers whether a record with it exists, whatever level the answers are approved at)."""
    asked = set(fields) | ({field.name for field in declared if field.key} if kind == "verify" else set())
    return max((field.level for field in declared if field.name in asked), default=0)


def _open_of(item_id: int, consumer_id: int) -> Select[Any]:
    return select(Subscription.id).where(
        Subscription.item_id == item_id,
        Subscription.consumer_department_id == consumer_id,
        Subscription.status.in_([status.value for status in OPEN]),
    )


def _activate(session: Session, subscription: Subscription, level: int) -> None:
    note_change(session, ITEM, subscription.item_id)
    now = utcnow()
    subscription.status = SubscriptionStatus.ACTIVE
    subscription.approved_level = level
    subscription.masked_fields = []  # approved at the level of its highest field
    subscription.active_from = now
    subscription.expires_at = now + timedelta(days=subscription.period_days)
    subscription.provider_decided_by = "automatic"
    subscription.provider_decided_at = now


def _end(
    session: Session, current: SubscriptionRead, status: SubscriptionStatus, actor: Principal, reason: str
) -> None:
    if not reason.strip():
        raise InvalidRequest("a rejection or a revocation needs a reason")
    values = {"status": status, "ended_by": actor.subject, "ended_at": utcnow(), "reason": reason.strip(),
              **_NO_REAPPROVAL}  # fmt: skip
    _change(session, current.id, current.status, values)
    action = "subscription.reject" if status is SubscriptionStatus.REJECTED else "subscription.revoke"
    _audit(session, current.id, actor, action, current.item, reason=reason.strip())
    notices.subscription_changed(session, current.id)


def _change(
    session: Session, subscription_id: int, expected: SubscriptionStatus, values: dict[str, Any], strict: bool = True
) -> bool:
    """Compare-and-set: the change happens only if the status is still the one the decision was made on."""
    item_id = session.execute(
        update(Subscription)
        .where(Subscription.id == subscription_id, Subscription.status == expected)
        .values(**values, updated_at=utcnow())
        .returning(Subscription.item_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    changed = item_id is not None
    if changed:
        note_change(session, ITEM, item_id)
    if not changed and strict:
        raise IllegalSubscriptionChange(
            f"subscription {subscription_id} changed while this decision was being made; reload it"
        )
    session.expire_all()
    return changed


def _audit(
    session: Session,
    subscription: Subscription | int,
    actor: Principal,
    action: str,
    item_code: str | None,
    **detail: Any,
) -> None:
    subscription_id = subscription if isinstance(subscription, int) else subscription.id
    audit.record(session, actor.subject, actor.department, action, "done", item_code=item_code,
                 subscription_id=subscription_id, **detail)  # fmt: skip
