"""Asking again: a re-approval (an active subscription approved again at its fields' current levels, after a field
was raised above what it was approved for) and a renewal (a re-approval that also adds days to the period, before it
ends). The approval rules run again, the subscription goes on as approved meanwhile, and every step is a
compare-and-set on the pending state, audited and, for a renewal, notified."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog.access.changes import ITEM, note_change
from catalog.access.service import Principal
from catalog.db import utcnow
from catalog.items import repository as items_repository
from catalog.items.schemas import SharingType
from catalog.notifications import notices
from catalog.subscriptions import scopes
from catalog.subscriptions.models import Subscription
from catalog.subscriptions.service import (
    _NO_REAPPROVAL,
    REAPPROVAL_PROVIDER_APPROVED,
    REAPPROVAL_REQUESTED,
    IllegalSubscriptionChange,
    InvalidRequest,
    Rules,
    SubscriptionRead,
    SubscriptionStatus,
    _audit,
    expire_due,
    levels_of,
    masked_at,
    read,
)


def request_reapproval(session: Session, rules: Rules, subscription_id: int, actor: Principal) -> SubscriptionRead:
    """The consumer asks for its active subscription to be approved again at its fields' current levels: the
    approval rules run again (at once for unconditional items up to the automatic level, else the provider's
    approval, then an officer's from the officer level). Until then the subscription goes on as it is."""
    return _ask_again(session, rules, subscription_id, actor, None)


def request_renewal(
    session: Session, rules: Rules, subscription_id: int, actor: Principal, days: int
) -> SubscriptionRead:
    """The consumer asks, before its subscription ends, for ``days`` more: a re-approval that also extends the
    period. The approval rules run again at the fields' current levels; the data keeps flowing as approved until
    the old end, and once approved the end moves ``days`` later (at most the longest period from the approval)."""
    if not 1 <= days <= rules.max_days:
        raise InvalidRequest(f"a renewal adds 1 to {rules.max_days} days")
    return _ask_again(session, rules, subscription_id, actor, days)


def _ask_again(
    session: Session, rules: Rules, subscription_id: int, actor: Principal, renewal_days: int | None
) -> SubscriptionRead:
    current = _still_active(session, rules, subscription_id)
    if current.status is SubscriptionStatus.EXPIRED:
        raise IllegalSubscriptionChange(f"subscription {subscription_id} has ended: request a new one")
    if current.status is not SubscriptionStatus.ACTIVE or current.reapproval_status is not None:
        pending = " (a re-approval or renewal is pending)" if current.reapproval_status else ""
        what = "renewed" if renewal_days else "re-approved"
        raise IllegalSubscriptionChange(f"subscription {subscription_id} cannot be {what} now{pending}")
    # A re-approval asks for the fields' current levels; a renewal for what was approved (never more: a field raised
    # since stays masked, and a renewal is no way round a re-approval).
    level = min(current.level, current.approved_level or current.level) if renewal_days else current.level
    sharing = items_repository.get_by_code_or_raise(session, current.item).declaration.sharing_type
    automatic = sharing is SharingType.UNCONDITIONAL and level <= rules.auto_approve_max_level
    values = {"reapproval_status": REAPPROVAL_REQUESTED, "reapproval_level": level,
              "reapproval_requested_by": actor.subject, "reapproval_requested_at": utcnow(),
              "renewal_days": renewal_days}  # fmt: skip
    _change_reapproval(session, subscription_id, None, values)
    action = "subscription.renewal_request" if renewal_days else "subscription.reapproval_request"
    _audit(session, subscription_id, actor, action, current.item, level=level, days=renewal_days)
    if automatic:
        _reapprove(session, rules, read(session, rules, subscription_id), level, REAPPROVAL_REQUESTED, actor)
    elif renewal_days:
        notices.renewal_changed(session, subscription_id)
    return read(session, rules, subscription_id)


def _still_active(session: Session, rules: Rules, subscription_id: int) -> SubscriptionRead:
    """The subscription as it stands, marked expired first if its period has ended (the scheduler may be late)."""
    current = read(session, rules, subscription_id)
    if (
        current.status is SubscriptionStatus.ACTIVE
        and current.expires_at is not None
        and current.expires_at <= utcnow()
    ):
        stored = session.get_one(Subscription, subscription_id)
        expire_due(session, item_id=stored.item_id, consumer_id=stored.consumer_department_id)
        current = read(session, rules, subscription_id)
    return current


def approve_reapproval(
    session: Session, rules: Rules, subscription_id: int, actor: Principal, as_officer: bool, level: int | None = None
) -> SubscriptionRead:
    """The provider's (then, from the officer level, an officer's) approval of a re-approval; either may set a
    lower level, and fields above it stay masked."""
    current = _still_active(session, rules, subscription_id)
    expected = REAPPROVAL_PROVIDER_APPROVED if as_officer else REAPPROVAL_REQUESTED
    if current.status is not SubscriptionStatus.ACTIVE or current.reapproval_status != expected:
        who = "an officer" if as_officer else "the provider"
        raise IllegalSubscriptionChange(f"subscription {subscription_id} has no re-approval for {who} to approve")
    cap = (
        int(current.reapproval_level or current.level)
        if level is None
        else min(level, current.reapproval_level or level)
    )
    if current.scope:
        scopes.unmasked_at(current.scope, levels_of(session, current.item), cap)
    if not as_officer and (current.reapproval_level or 0) >= rules.officer_level:
        _change_reapproval(session, subscription_id, expected, {"reapproval_status": REAPPROVAL_PROVIDER_APPROVED,
                                                                "reapproval_level": cap})  # fmt: skip
        _audit(session, subscription_id, actor, "subscription.reapproval_approve_provider", current.item, level=cap)
        if current.renewal_days:
            notices.renewal_changed(session, subscription_id)
    else:
        _reapprove(session, rules, current, cap, expected, actor)
    return read(session, rules, subscription_id)


def reject_reapproval(
    session: Session, rules: Rules, subscription_id: int, actor: Principal, reason: str
) -> SubscriptionRead:
    current = _still_active(session, rules, subscription_id)
    if current.status is not SubscriptionStatus.ACTIVE or current.reapproval_status is None:
        raise IllegalSubscriptionChange(f"subscription {subscription_id} has no pending re-approval")
    if not reason.strip():
        raise InvalidRequest("a rejection needs a reason")
    _change_reapproval(session, subscription_id, current.reapproval_status, _NO_REAPPROVAL)
    _audit(session, subscription_id, actor, "subscription.reapproval_reject", current.item, reason=reason.strip())
    if current.renewal_days:
        notices.renewal_decided(session, subscription_id, renewed=False)
    return read(session, rules, subscription_id)


def _reapprove(
    session: Session, rules: Rules, current: SubscriptionRead, cap: int, expected: str, actor: Principal
) -> None:
    values: dict[str, Any] = {"approved_level": cap, "masked_fields": masked_at(session, current, cap),
                              **_NO_REAPPROVAL}  # fmt: skip
    if current.renewal_days and current.expires_at is not None:
        longest = utcnow() + timedelta(days=rules.max_days)
        values |= {"expires_at": min(current.expires_at + timedelta(days=current.renewal_days), longest),
                   "expiry_notice_at": None}  # the reminder is due again before the new end  # fmt: skip
    _change_reapproval(session, current.id, expected, values)
    action = "subscription.renew" if current.renewal_days else "subscription.reapprove"
    _audit(session, current.id, actor, action, current.item, level=cap, masked=values["masked_fields"],
           expires_at=values["expires_at"].isoformat() if "expires_at" in values else None)  # fmt: skip
    if current.renewal_days:
        notices.renewal_decided(session, current.id, renewed=True)


def _change_reapproval(session: Session, subscription_id: int, expected: str | None, values: dict[str, Any]) -> None:
    """Compare-and-set on the re-approval's state, as ``_change`` on the status."""
    state = Subscription.reapproval_status
    item_id = session.execute(
        update(Subscription)
        .where(Subscription.id == subscription_id, Subscription.status == SubscriptionStatus.ACTIVE,
               state.is_(None) if expected is None else state == expected)
        .values(**values, updated_at=utcnow())
        .returning(Subscription.item_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()  # fmt: skip
    if item_id is None:
        raise IllegalSubscriptionChange(f"subscription {subscription_id} changed while this decision was being made")
    note_change(session, ITEM, item_id)
    session.expire_all()
