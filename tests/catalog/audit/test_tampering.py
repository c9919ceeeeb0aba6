"""A database owner tampers with sealed audit events (the append-only triggers dropped first, put back after), on a
fresh database of each backend: verification finds each change, deletion, insertion and reordering, names the
first event that fails and how, and catches a rewritten or truncated chain through its signatures and the heads
kept outside the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from catalog.audit import canonical, chain
from catalog.audit.models import AuditBlock, AuditEvent, AuditVerification
from catalog.audit.schemas import VerificationRead
from catalog.audit.signing import AuditKey
from catalog.db import make_engine, session_scope
from tests.catalog.audit import helpers
from tests.catalog.audit.helpers import check, triggers_dropped


class Trail:
    """Whatever a fresh database holds, sealed first; then 35 events, ids n = 1..36 after those, without 13 (rolled
    back), sealed in blocks b = 1..4 of 10 events: n = 1..10, 11..21, 22..31, 32..36. ``id(n)`` and ``block(b)`` are
    the real numbers."""

    def __init__(self, engine: Engine, key: AuditKey, heads_file: Path, base: tuple[int, int]) -> None:
        self.engine, self.key, self.heads_file = engine, key, heads_file
        self.keys = frozenset([key.public_key])
        self.base_id, self.base_block = base

    def id(self, n: int) -> int:
        return self.base_id + n

    def block(self, b: int) -> int:
        return self.base_block + b

    def verify(self, **options: Any) -> VerificationRead:
        return check(self.engine, self.keys, self.heads_file, **options)


@pytest.fixture
def trail(backend: str, database_factory: Any, tmp_path: Path) -> Any:
    engine = make_engine(database_factory(backend))
    key = helpers.make_key(tmp_path)
    trail = Trail(engine, key, tmp_path / "heads.jsonl", helpers.seal_what_is_there(engine, key))
    helpers.write_events(engine, 35, gap_after=12)
    report = helpers.seal(engine, key, trail.heads_file)
    assert (report.sealed_blocks, report.sealed_rows) == (4, 35)
    ranges = [(block.first_id, block.last_id, block.row_count) for block in helpers.blocks(engine)[-4:]]
    assert ranges == [(trail.id(first), trail.id(last), count)
                      for first, last, count in ((1, 10, 10), (11, 21, 10), (22, 31, 10), (32, 36, 5))]  # fmt: skip
    yield trail
    engine.dispose()


def first_failure(result: VerificationRead) -> tuple[str, int | None, int | None]:
    assert not result.ok
    failure = result.failures[0]
    return failure.kind, failure.block, failure.audit_id


def kinds(result: VerificationRead) -> list[tuple[str, int | None, int | None]]:
    return [(failure.kind, failure.block, failure.audit_id) for failure in result.failures]


def assert_append_only_again(engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.id == 1).values(rows=0))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.id == 1))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(delete(AuditBlock).where(AuditBlock.id == 1))


def test_an_untouched_chain_verifies_and_reports_what_is_not_sealed_yet(trail: Trail) -> None:
    result = trail.verify()
    assert result.ok and result.failures == []
    assert (result.blocks_checked, result.head_block) == (trail.block(4), trail.block(4))
    assert (result.rows_checked, result.heads_checked, result.unsealed_count) == (trail.base_id + 35, 1, 0)

    helpers.write_events(trail.engine, 3)
    later = trail.verify()
    assert later.ok and (later.unsealed_count, later.unsealed_first_id, later.unsealed_last_id) == (
        3, trail.id(37), trail.id(39),
    )  # fmt: skip
    with session_scope(trail.engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditVerification)) == 2


def test_a_changed_event_is_found(trail: Trail) -> None:
    helpers.change(trail.engine, trail.id(17))
    assert_append_only_again(trail.engine)

    result = trail.verify()

    assert kinds(result) == [("row_changed", trail.block(2), trail.id(17))]
    assert (
        result.failures[0].message == f"event {trail.id(17)} was changed after it was sealed in block {trail.block(2)}"
    )


def test_a_deleted_event_is_found(trail: Trail) -> None:
    helpers.delete(trail.engine, trail.id(25))
    assert_append_only_again(trail.engine)

    assert kinds(trail.verify()) == [("row_missing", trail.block(3), trail.id(25))]


def test_an_event_inserted_into_a_sealed_range_is_found(trail: Trail) -> None:
    helpers.insert_at(trail.engine, trail.id(13))  # the id a rolled-back transaction left unused, inside block 2

    assert kinds(trail.verify()) == [("row_inserted", trail.block(2), trail.id(13))]


def test_reordered_events_are_found(trail: Trail) -> None:
    helpers.swap(trail.engine, trail.id(5), trail.id(6))
    assert_append_only_again(trail.engine)

    result = trail.verify()

    assert kinds(result) == [("rows_reordered", trail.block(1), trail.id(n)) for n in (5, 6)]
    assert result.failures[0].message == (
        f"event {trail.id(5)} holds what was sealed as event {trail.id(6)} in block {trail.block(1)}: "
        "events were reordered"
    )


def test_a_rehashed_block_is_caught_by_its_signature_and_the_next_link(trail: Trail) -> None:
    """The owner changes an event, then recomputes its block's hashes; without the key they cannot sign them."""
    helpers.change(trail.engine, trail.id(17))
    with session_scope(trail.engine) as session:
        rows = list(chain.stream_events(session, trail.id(11), trail.id(21)))
    hasher = canonical.RowsHasher()
    for row in rows:
        hasher.add(row[0], canonical.event_digest(row))
    with triggers_dropped(trail.engine, "audit_block") as connection:
        block = connection.execute(select(AuditBlock).where(AuditBlock.id == trail.block(2))).one()
        rewritten = AuditBlock(**{**block._asdict(), "rows_hash": hasher.rows_hash})
        connection.execute(update(AuditBlock).where(AuditBlock.id == trail.block(2))
                           .values(rows_hash=hasher.rows_hash, hash=canonical.block_hash(rewritten)))  # fmt: skip

    assert kinds(trail.verify()) == [
        ("signature_invalid", trail.block(2), None), ("block_link_broken", trail.block(3), None),
    ]  # fmt: skip


def test_a_chain_cut_short_is_caught_by_the_heads_file(trail: Trail) -> None:
    with triggers_dropped(trail.engine, "audit_block") as connection:
        connection.execute(delete(AuditBlock).where(AuditBlock.id == trail.block(4)))
    with triggers_dropped(trail.engine) as connection:
        connection.execute(delete(AuditEvent).where(AuditEvent.id >= trail.id(32)))

    result = trail.verify()

    assert kinds(result) == [("head_beyond_chain", trail.block(4), None)]
    assert result.failures[0].message == f"heads file line 1: block {trail.block(4)} is no longer in the chain"
    assert result.unsealed_count == 0


def test_a_given_head_and_signatures_by_another_key(trail: Trail, tmp_path: Path) -> None:
    with session_scope(trail.engine) as session:
        head = chain.head(session)
    assert head is not None
    assert trail.verify(given=[head]).ok

    stretched = head.model_copy(update={"last_id": head.last_id + 5})
    assert [f.kind for f in trail.verify(given=[stretched]).failures] == ["head_altered"]
    rehashed = stretched.model_copy(update={"hash": canonical.block_hash(stretched)})
    assert [f.kind for f in trail.verify(given=[rehashed]).failures] == ["head_signature_invalid", "head_mismatch"]

    stranger = helpers.make_key(tmp_path / "stranger")
    result = check(trail.engine, frozenset([stranger.public_key]), None)
    assert kinds(result) == [("key_untrusted", n, None) for n in range(1, trail.block(4) + 1)]


def test_a_range_checks_only_its_blocks_and_a_damaged_heads_file_is_reported(trail: Trail) -> None:
    helpers.change(trail.engine, trail.id(17))

    assert trail.verify(from_block=trail.block(3), to_block=trail.block(4)).ok
    ranged = trail.verify(from_block=trail.block(2), to_block=trail.block(2))
    assert (ranged.blocks_checked, ranged.rows_checked) == (1, 10)
    assert first_failure(ranged) == ("row_changed", trail.block(2), trail.id(17))

    with trail.heads_file.open("a", encoding="utf-8") as handle:
        handle.write("{not a head\n")
    result = trail.verify(from_block=trail.block(3))
    assert [(f.kind, f.message) for f in result.failures] == [
        ("head_unreadable", "heads file line 2: not a signed head")
    ]
