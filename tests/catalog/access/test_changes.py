"""The access change log: notes become one consecutive revision at commit, never on rollback, and a poll
names what changed since a revision (or everything, when the log was pruned past it)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from catalog.access import changes
from catalog.db import utcnow


def test_notes_are_announced_at_commit_under_one_revision(session: Session) -> None:
    seen = changes.poll(session, None).revisions
    changes.note_change(session, changes.ITEM, 7)
    changes.note_change(session, changes.PRINCIPAL, "token:3")
    assert changes.poll(session, seen).changed == frozenset()  # nothing before the commit
    session.commit()
    polled = changes.poll(session, seen)
    assert polled.revisions.changes == seen.changes + 1 and polled.revisions.policy == seen.policy
    assert polled.changed == {(changes.ITEM, "7"), (changes.PRINCIPAL, "token:3")}
    assert changes.poll(session, polled.revisions).changed == frozenset()


def test_notes_of_a_rolled_back_transaction_are_never_announced(session: Session) -> None:
    seen = changes.poll(session, None).revisions
    changes.note_change(session, changes.ITEM, 8)
    session.rollback()
    session.commit()
    assert changes.poll(session, seen) == changes.Poll(seen, frozenset())


def test_a_savepoint_waits_for_the_outer_commit(session: Session) -> None:
    seen = changes.poll(session, None).revisions
    with session.begin_nested():
        changes.note_change(session, changes.ITEM, 9)
    assert changes.poll(session, seen).changed == frozenset()
    session.commit()
    assert changes.poll(session, seen).changed == {(changes.ITEM, "9")}


def test_a_process_behind_a_pruned_log_forgets_everything(session: Session) -> None:
    seen = changes.poll(session, None).revisions
    for item_id in (1, 2):
        changes.note_change(session, changes.ITEM, item_id)
        session.commit()
    assert changes.prune_changes(session, before=utcnow() + timedelta(seconds=1)) >= 2
    assert changes.poll(session, seen).changed is None
