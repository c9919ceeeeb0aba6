"""What a request decides before it touches a row, remembered in the API process.

Who a credential belongs to, what the Casbin policy allows, and for each item its status, declared fields,
current version and active subscriptions: all read from memory, so a decision costs no database round trip.
What is remembered is kept true by the change log (``catalog.access.changes``): at most every
``refresh_seconds`` the process polls it and forgets the items and principals that changed, and reloads the
policy when it moved. A commit in this process that announced changes makes the next request poll at once.
A subscription's end is checked against the clock on every decision, so expiry needs no poll. A principal read
from the database (new to this process: a token made a moment ago, here or in another process) brings the policy
up to date first, so that the roles it was given with it hold on its first request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import changes
from catalog.access.policy import PolicyEnforcer
from catalog.access.service import (
    ANONYMOUS,
    InvalidCredentials,
    Principal,
    decode_access_token,
    is_machine_token,
    machine_token_holder,
    token_digest,
    user_is_active,
)
from catalog.classification.types import DataType, MaskingRule
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.ingest.models import ItemVersion
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ItemStatus
from catalog.subscriptions.models import Subscription
from catalog.subscriptions.service import SubscriptionStatus


@dataclass(frozen=True)
class DeclaredField:
    name: str
    data_type: DataType
    level: int
    masking: MaskingRule
    key: bool = False  # part of the item's key: what a verification look-up matches on


@dataclass(frozen=True)
class PublishedVersion:
    number: int
    table_name: str
    row_count: int
    fields: tuple[Mapping[str, Any], ...]  # every column of the version, as recorded when it was published


@dataclass(frozen=True)
class ActiveSubscription:
    id: int
    fields: frozenset[str]
    approved_level: int
    expires_at: datetime
    masked_fields: frozenset[str] = frozenset()  # masked whatever their level, until re-approved
    kind: str = "read"  # read: the data; verify: look-ups of records the consumer holds, nothing more
    scope: Mapping[str, Any] | None = field(default=None, compare=False)  # the rows granted, as stored (scopes.py)

    def masks(self, name: str, level: int) -> bool:
        return level > self.approved_level or name in self.masked_fields


@dataclass(frozen=True)
class ItemAccess:
    """An item as a read decision needs it."""

    id: int
    code: str
    status: ItemStatus
    open_data: bool
    declared: tuple[DeclaredField, ...]  # in declared order; their current levels decide the masking
    current: PublishedVersion | None
    subscriptions: Mapping[str, ActiveSubscription]  # by consumer department code, status active

    def subscription_of(self, department: str, now: datetime) -> ActiveSubscription | None:
        """The department's subscription if it is active at ``now`` (its end checked to the second)."""
        subscription = self.subscriptions.get(department)
        return subscription if subscription is not None and subscription.expires_at > now else None


class ItemSource(Protocol):
    """What a grant is decided from: the item as a read decision needs it, and the hash rule's key."""

    @property
    def pseudonym_key(self) -> bytes: ...

    def item(self, session: Session, code: str) -> ItemAccess | None: ...


@dataclass(frozen=True)
class Remembered:
    """One item as the cache remembered it at a moment: the checks of a look-up on the event loop read this snapshot
    and never the database."""

    snapshot: ItemAccess
    pseudonym_key: bytes

    def item(self, session: Session, code: str) -> ItemAccess | None:
        return self.snapshot if code == self.snapshot.code else None


class AccessCache:
    def __init__(self, refresh_seconds: float, pseudonym_key: bytes, enforcer: PolicyEnforcer | None = None) -> None:
        self.enforcer = enforcer or PolicyEnforcer()
        self.pseudonym_key = pseudonym_key
        self._refresh_seconds = refresh_seconds
        self._next_poll = 0.0
        self._seen: changes.Revisions | None = None
        self._poll_lock = threading.Lock()
        self._lock = threading.Lock()
        self._generation = 0  # moves whenever anything is forgotten: a load begun before is not kept
        self._items: dict[str, ItemAccess] = {}
        self._tokens: dict[str, tuple[Principal, datetime]] = {}
        self._active_users: set[str] = set()

    def refresh(self, session: Session) -> None:
        """Poll the change log if it is time (another thread polling meanwhile is not waited for)."""
        if time.monotonic() < self._next_poll:
            return
        if not self._poll_lock.acquire(blocking=self._seen is None):
            return
        try:
            if time.monotonic() >= self._next_poll:
                self._apply(session, changes.poll(session, self._seen))
                self._next_poll = time.monotonic() + self._refresh_seconds
        finally:
            self._poll_lock.release()

    def poll_soon(self) -> None:
        """This process changed access: the next request polls at once."""
        self._next_poll = 0.0

    def _apply(self, session: Session, polled: changes.Poll) -> None:
        self.enforcer.refresh(session, polled.revisions.policy)
        if polled.changed is None or polled.changed:
            with self._lock:
                self._generation += 1
                if polled.changed is None:
                    self._items.clear()
                    self._forget_principals()
                else:
                    self._forget(polled.changed)
        self._seen = polled.revisions

    def _forget(self, changed: frozenset[tuple[str, str]]) -> None:
        items = {key for kind, key in changed if kind == changes.ITEM}
        if items:
            self._items = {code: item for code, item in self._items.items() if str(item.id) not in items}
        if any(kind == changes.PRINCIPAL for kind, _ in changed):
            self._forget_principals()  # rare (a revocation): forgetting them all is simplest

    def _forget_principals(self) -> None:
        self._tokens.clear()
        self._active_users.clear()

    def _keep(self, session: Session, generation: int, store: Any) -> None:
        """Remember a load unless something was forgotten meanwhile or this transaction has unannounced changes."""
        with self._lock:
            if generation == self._generation and not session.info.get(changes.PENDING):
                store()

    def known_principal(self, credential: str | None, secret: str) -> Principal | None:
        """The principal of a credential from memory alone; None when the database must be asked (a poll is due,
        or the credential was not seen since it last changed). InvalidCredentials for a bad access token."""
        if time.monotonic() >= self._next_poll:
            return None
        if credential is None:
            return ANONYMOUS
        if is_machine_token(credential):
            known = self._tokens.get(token_digest(credential))
            if known is None or known[1] <= utcnow():
                return None
            return known[0]
        principal = decode_access_token(credential, secret)
        return principal if principal.subject in self._active_users else None

    def principal(
        self, session: Session, credential: str, secret: str, before_look_up: Callable[[], None] = lambda: None
    ) -> Principal:
        """Who a bearer credential (an access token or a machine token) belongs to; InvalidCredentials if no one.
        ``before_look_up`` runs just before the database is asked (it may refuse by raising)."""
        if is_machine_token(credential):
            return self._machine_token_principal(session, token_digest(credential), before_look_up)
        principal = decode_access_token(credential, secret)
        if principal.subject not in self._active_users:
            before_look_up()
            generation = self._generation
            if not user_is_active(session, principal.subject):
                raise InvalidCredentials("the access token's user is no longer active")
            self.enforcer.refresh(session)
            self._keep(session, generation, lambda: self._active_users.add(principal.subject))
        return principal

    def _machine_token_principal(self, session: Session, digest: str, before_look_up: Callable[[], None]) -> Principal:
        known = self._tokens.get(digest)
        if known is None:
            before_look_up()
            generation = self._generation
            known = machine_token_holder(session, digest)
            self.enforcer.refresh(session)
            self._keep(session, generation, lambda: self._tokens.__setitem__(digest, known))
        principal, expires_at = known
        if expires_at <= utcnow():
            raise InvalidCredentials("the token has been revoked or has expired")
        return principal

    def remembered(self, code: str) -> Remembered | None:
        """A view of this cache that answers from one snapshot of the item in memory, never the database (for work on
        the event loop); None when the item is not in memory."""
        item = self._items.get(code)
        return None if item is None else Remembered(item, self.pseudonym_key)

    def item(self, session: Session, code: str) -> ItemAccess | None:
        known = self._items.get(code)
        if known is not None:
            return known
        generation = self._generation
        loaded = load_item_access(session, code)
        if loaded is not None:
            self._keep(session, generation, lambda: self._items.__setitem__(code, loaded))
        return loaded


def load_item_access(session: Session, code: str) -> ItemAccess | None:
    row = session.execute(
        select(CatalogItem.id, CatalogItem.status, CatalogItem.open_data)
        .add_columns(ItemVersion.number, ItemVersion.table_name, ItemVersion.row_count, ItemVersion.fields)
        .outerjoin(ItemVersion, ItemVersion.id == CatalogItem.current_version_id)
        .where(CatalogItem.code == code)
    ).one_or_none()
    if row is None:
        return None
    current = (
        None if row.number is None else PublishedVersion(row.number, row.table_name, row.row_count, tuple(row.fields))
    )
    declared = session.execute(
        select(ItemField.name, ItemField.data_type, ItemField.level, ItemField.masking, ItemField.is_key)
        .where(ItemField.item_id == row.id, ItemField.reviewed_at.is_not(None))  # never approved: never served
        .order_by(ItemField.position)
    )
    subscriptions = session.execute(
        select(Subscription.id, Subscription.fields, Subscription.approved_level, Subscription.expires_at)
        .add_columns(Subscription.masked_fields, Subscription.kind, Subscription.scope, Department.code)
        .join(Department, Subscription.consumer_department_id == Department.id)
        .where(Subscription.item_id == row.id, Subscription.status == SubscriptionStatus.ACTIVE)
    )
    return ItemAccess(
        id=row.id,
        code=code,
        status=ItemStatus(row.status),
        open_data=bool(row.open_data),
        declared=tuple(
            DeclaredField(f.name, DataType(f.data_type), f.level, MaskingRule(f.masking), f.is_key) for f in declared
        ),
        current=current,
        subscriptions={s.code: _active(s) for s in subscriptions},
    )


def _active(row: Any) -> ActiveSubscription:
    masked = frozenset(row.masked_fields or ())
    return ActiveSubscription(
        row.id, frozenset(row.fields), row.approved_level or 0, row.expires_at, masked, row.kind, row.scope or None
    )
