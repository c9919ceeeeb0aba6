"""Announcing changes to what principals may read, and finding out about them in every API process.

A write that changes what someone may read (a subscription's state, an item's fields, status or current
version, a token's revocation) notes the key with ``note_change``. Just before its transaction commits, the
notes are written to ``access_change`` under the next revision of the change log. Each API process polls the
revisions (``poll``) and forgets what it remembered of the keys that changed.

The log's counter row is updated last, just before the commit, so its lock is held for the commit only and
is never waited on while other locks are held: revisions commit in order and no deadlock can involve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from catalog.access.models import AccessChange, PolicyRevision
from catalog.db import utcnow

ITEM = "item"  # key: the item's id; its fields, status, versions or subscriptions changed
PRINCIPAL = "principal"  # key: the subject; a token revoked, a user deactivated
POLICY_COUNTER, CHANGE_LOG_COUNTER = 1, 2  # the policy_revision rows
PENDING = "datashare.access_changes"
ANNOUNCED = "datashare.access_announced"  # set on a session whose commit announced changes


def note_change(session: Session, kind: str, key: object) -> None:
    """Announce, when this session's transaction commits, that what principals may read of ``key`` changed."""
    session.info.setdefault(PENDING, set()).add((kind, str(key)))


@event.listens_for(Session, "before_commit")
def _announce(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the notes wait for the outer commit
    pending: set[tuple[str, str]] | None = session.info.pop(PENDING, None)
    if not pending:
        return
    session.flush()  # every other write first: the counter's lock is the last one this transaction takes
    revision = session.execute(
        update(PolicyRevision)
        .where(PolicyRevision.id == CHANGE_LOG_COUNTER)
        .values(revision=PolicyRevision.revision + 1)
        .returning(PolicyRevision.revision)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    now = utcnow()
    rows = [{"revision": revision, "kind": kind, "key": key, "changed_at": now} for kind, key in sorted(pending)]
    session.execute(insert(AccessChange), rows)
    session.info[ANNOUNCED] = True


@event.listens_for(Session, "after_soft_rollback")
def _forget_notes(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)


@dataclass(frozen=True)
class Revisions:
    policy: int
    changes: int


@dataclass(frozen=True)
class Poll:
    revisions: Revisions
    changed: frozenset[tuple[str, str]] | None  # None: anything may have changed (first poll, or a gap)


def poll(session: Session, seen: Revisions | None) -> Poll:
    """The current revisions, and the keys changed since ``seen``."""
    counters: dict[Any, Any] = dict(session.execute(select(PolicyRevision.id, PolicyRevision.revision)).all())
    now = Revisions(counters.get(POLICY_COUNTER, 0), counters.get(CHANGE_LOG_COUNTER, 0))
    if seen is None or now.changes < seen.changes:
        return Poll(now, None)
    if now.changes == seen.changes:
        return Poll(now, frozenset())
    rows = session.execute(
        select(AccessChange.revision, AccessChange.kind, AccessChange.key).where(
            AccessChange.revision > seen.changes, AccessChange.revision <= now.changes
        )
    ).all()
    if {row.revision for row in rows} != set(range(seen.changes + 1, now.changes + 1)):
        return Poll(now, None)  # pruned meanwhile
    return Poll(now, frozenset((row.kind, row.key) for row in rows))


def prune_changes(session: Session, before: datetime) -> int:
    """Forget log entries older than ``before`` (a process that falls further behind forgets everything)."""
    result = session.execute(delete(AccessChange).where(AccessChange.changed_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
