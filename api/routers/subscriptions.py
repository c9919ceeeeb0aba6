"""The subscription workflow over HTTP: consumers request, providers' stewards and data officers decide, any of
the three may revoke; after a field was raised above its approved level, the consumer may ask for re-approval,
decided as a request is. A subscription is visible to its two departments and to officers; to others it is 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from api.deps import Guard, GuardDep, Id, PlatformDep, SessionDep
from catalog.classification.review import NO_NUL
from catalog.subscriptions import reapproval, service
from catalog.subscriptions.scopes import Scope
from catalog.subscriptions.service import Rules, SubscriptionCreate, SubscriptionRead, SubscriptionStatus

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
EVERYWHERE = "*"


class Decision(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class Renewal(BaseModel):
    days: int = Field(ge=1, le=3660, description="Days added to the period once the renewal is approved.")


class Approval(BaseModel):
    level: int | None = Field(
        default=None,
        ge=1,
        le=4,
        description="Approve up to this level (the approval that activates it): "
        "requested fields above it are delivered masked. By default, the requested fields' level.",
    )
    scope: Scope | None = Field(
        default=None,
        description="Grant only these rows (see the request's scope): set by the provider's steward, or narrowing "
        "the scope asked for (a data officer may narrow the provider's further). By default, the rows asked for.",
    )


def rules_of(platform: PlatformDep) -> Rules:
    settings = platform.settings
    return Rules(settings.auto_approve_max_level, settings.officer_level, settings.max_subscription_days)


@router.post("", response_model=SubscriptionRead, status_code=status.HTTP_201_CREATED)
def request(body: SubscriptionCreate, session: SessionDep, guard: GuardDep, platform: PlatformDep) -> SubscriptionRead:
    principal = guard.signed_in()
    guard.require(str(principal.department), "subscription", "request", item_code=body.item)
    with guard.refusals_audited("subscription.request", item_code=body.item):
        return service.request(session, rules_of(platform), body, principal)


@router.get("", response_model=list[SubscriptionRead])
def listing(
    session: SessionDep,
    guard: GuardDep,
    platform: PlatformDep,
    status: SubscriptionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SubscriptionRead]:
    """Officers see every subscription; others those their department requested or provides."""
    principal = guard.signed_in()
    if guard.allows(EVERYWHERE, "subscription", "decide_officer"):
        return service.listing(session, rules_of(platform), None, status, limit)
    guard.require(str(principal.department), "subscription", "read")
    return service.listing(session, rules_of(platform), principal.department, status, limit)


@router.get("/{subscription_id}", response_model=SubscriptionRead)
def read(subscription_id: Id, session: SessionDep, guard: GuardDep, platform: PlatformDep) -> SubscriptionRead:
    _visible(subscription_id, session, guard)
    return service.read(session, rules_of(platform), subscription_id)


@router.post("/{subscription_id}/approve", response_model=SubscriptionRead)
def approve(
    subscription_id: Id, session: SessionDep, guard: GuardDep, platform: PlatformDep, body: Approval | None = None
) -> SubscriptionRead:
    """The provider's steward approves a request; a data officer then approves one that needs it."""
    parties = _visible(subscription_id, session, guard)
    rules = rules_of(platform)
    current = service.read(session, rules, subscription_id).status
    as_officer = current is SubscriptionStatus.PROVIDER_APPROVED
    _require_approver(parties, guard, current is SubscriptionStatus.REQUESTED or as_officer, as_officer)
    level, scope = (body.level, body.scope) if body is not None else (None, None)
    with guard.refusals_audited("subscription.approve", subscription_id=subscription_id):
        return service.approve(session, rules, subscription_id, guard.principal, as_officer, level, scope)


@router.post("/{subscription_id}/reject", response_model=SubscriptionRead)
def reject(
    subscription_id: Id, body: Decision, session: SessionDep, guard: GuardDep, platform: PlatformDep
) -> SubscriptionRead:
    _require_decider(_visible(subscription_id, session, guard), guard)
    with guard.refusals_audited("subscription.reject", subscription_id=subscription_id):
        return service.reject(session, rules_of(platform), subscription_id, guard.principal, body.reason)


@router.post("/{subscription_id}/revoke", response_model=SubscriptionRead)
def revoke(
    subscription_id: Id, body: Decision, session: SessionDep, guard: GuardDep, platform: PlatformDep
) -> SubscriptionRead:
    """The provider's steward, a data officer, or the consumer department ends an active subscription."""
    parties = _visible(subscription_id, session, guard)
    if not guard.allows(parties.consumer, "subscription", "revoke"):
        guard.require(parties.provider, "subscription", "revoke")
    with guard.refusals_audited("subscription.revoke", subscription_id=subscription_id):
        return service.revoke(session, rules_of(platform), subscription_id, guard.principal, body.reason)


@router.post("/{subscription_id}/reapproval", response_model=SubscriptionRead)
def request_reapproval(
    subscription_id: Id, session: SessionDep, guard: GuardDep, platform: PlatformDep
) -> SubscriptionRead:
    """The consumer department asks for its active subscription to be approved again at its fields' current
    levels (after a field was raised above what it was approved for); the approval rules run again."""
    parties = _visible(subscription_id, session, guard)
    guard.require(parties.consumer, "subscription", "request")
    with guard.refusals_audited("subscription.reapproval_request", subscription_id=subscription_id):
        return reapproval.request_reapproval(session, rules_of(platform), subscription_id, guard.principal)


@router.post("/{subscription_id}/renew", response_model=SubscriptionRead)
def renew(
    subscription_id: Id, body: Renewal, session: SessionDep, guard: GuardDep, platform: PlatformDep
) -> SubscriptionRead:
    """The consumer department asks, before its active subscription ends, for ``days`` more. The approval rules run
    again at the fields' current levels (decided through ``/reapproval/approve`` and ``/reapproval/reject``); the
    data keeps flowing as approved until the old end, and once approved the end moves ``days`` later."""
    parties = _visible(subscription_id, session, guard)
    guard.require(parties.consumer, "subscription", "request")
    with guard.refusals_audited("subscription.renewal_request", subscription_id=subscription_id):
        return reapproval.request_renewal(session, rules_of(platform), subscription_id, guard.principal, body.days)


@router.post("/{subscription_id}/reapproval/approve", response_model=SubscriptionRead)
def approve_reapproval(
    subscription_id: Id, session: SessionDep, guard: GuardDep, platform: PlatformDep, body: Approval | None = None
) -> SubscriptionRead:
    """The provider's steward approves a re-approval; a data officer then approves one reaching the officer
    level. Either may approve up to a lower level: fields above it stay masked."""
    parties = _visible(subscription_id, session, guard)
    rules = rules_of(platform)
    pending = service.read(session, rules, subscription_id).reapproval_status
    as_officer = pending == service.REAPPROVAL_PROVIDER_APPROVED
    _require_approver(parties, guard, pending == service.REAPPROVAL_REQUESTED or as_officer, as_officer)
    level = body.level if body is not None else None
    with guard.refusals_audited("subscription.reapproval_approve", subscription_id=subscription_id):
        return reapproval.approve_reapproval(session, rules, subscription_id, guard.principal, as_officer, level)


@router.post("/{subscription_id}/reapproval/reject", response_model=SubscriptionRead)
def reject_reapproval(
    subscription_id: Id, body: Decision, session: SessionDep, guard: GuardDep, platform: PlatformDep
) -> SubscriptionRead:
    """The provider's steward or a data officer turns a re-approval down; the subscription goes on as it is."""
    _require_decider(_visible(subscription_id, session, guard), guard)
    with guard.refusals_audited("subscription.reapproval_reject", subscription_id=subscription_id):
        return reapproval.reject_reapproval(session, rules_of(platform), subscription_id, guard.principal, body.reason)


def _require_approver(parties: service.Parties, guard: GuardDep, pending: bool, as_officer: bool) -> None:
    """The provider's steward gives the first approval, a data officer the second; with nothing pending, a
    decider learns why (409) and anyone else is refused."""
    if pending:
        guard.require(parties.provider, "subscription", "decide_officer" if as_officer else "decide")
    else:
        _require_decider(parties, guard)


def _require_decider(parties: service.Parties, guard: GuardDep) -> None:
    if not guard.allows(parties.provider, "subscription", "decide_officer"):
        guard.require(parties.provider, "subscription", "decide")


def _visible(subscription_id: Id, session: SessionDep, guard: GuardDep) -> service.Parties:
    """The subscription's departments, if the caller may know it exists (else 404, as if it did not)."""
    guard.signed_in()
    parties = service.parties(session, subscription_id)
    if may_know(guard, parties.consumer, parties.provider):
        return parties
    raise service.SubscriptionNotFound(f"subscription {subscription_id} does not exist")


def may_know(guard: Guard, consumer: str, provider: str) -> bool:
    """Whether the caller may know of a subscription between these departments: its two departments' people who
    read subscriptions, and data officers."""
    own = guard.principal.department
    if own in (consumer, provider) and guard.allows(str(own), "subscription", "read"):
        return True
    return guard.allows(EVERYWHERE, "subscription", "decide_officer")
