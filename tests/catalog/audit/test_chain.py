"""Sealing on a fresh database of each backend: the canonical form reads back identically on both, blocks chain
on from run to run, heads go to the file once each, and on PostgreSQL a seal never seals ids a running transaction
may still commit below its watermark."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text

from catalog.audit import canonical, chain, heads
from catalog.audit import service as audit
from catalog.audit.errors import SealNeedsOwnTransaction, SealUnsafe
from catalog.audit.models import AuditEvent
from catalog.audit.signing import AuditKey, signature_valid
from catalog.db import make_engine, session_scope
from tests.catalog.audit import helpers

# helpers.event(1) in canonical form, as read back from either backend, and its SHA-256.
EVENT_1 = (
    '{"action":"data.read","at":"2026-12-01T08:00:01.123456Z","department":"psga","detail":{"filters":{"after":1,'
    '"limit":100},"format":"json"},"fields_masked":["公民身份号码"],"fields_returned":["姓名","所属社区"],'
    '"item_code":"PSGA-RK-0001","outcome":"done","principal":"user:reader-1","rows":1,"subscription_id":7,"version":1}'
)
EVENT_1_DIGEST = "955965d8a6fa81f3259d26ac8516131efef17568a85855e58d82dba685182d89"


@pytest.fixture
def engine(backend: str, database_factory: Any) -> Iterator[Engine]:
    """A fresh database of the backend (sealing watches other transactions: not one rolled-back test transaction)."""
    engine = make_engine(database_factory(backend))
    yield engine
    engine.dispose()


@pytest.fixture
def key(tmp_path: Path) -> AuditKey:
    return helpers.make_key(tmp_path)


@pytest.fixture
def base(engine: Engine, key: AuditKey) -> tuple[int, int]:
    """What the fresh database held (migrations may write events), sealed: (its last id, its last block)."""
    return helpers.seal_what_is_there(engine, key)


@pytest.fixture
def postgres(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: sequences, transaction ids, advisory locks (SQLite has one writer at a time)")
    return engine


def ranges(engine: Engine, after_block: int) -> list[tuple[int, int, int, int]]:
    return [(b.id, b.first_id, b.last_id, b.row_count) for b in helpers.blocks(engine) if b.id > after_block]


def test_the_canonical_form_is_the_same_on_both_backends(engine: Engine, base: tuple[int, int]) -> None:
    helpers.write_events(engine, 1)
    with session_scope(engine) as session:
        (row,) = chain.stream_events(session, base[0] + 1, base[0] + 1)
    assert canonical.event_json(row[1]).decode("utf-8") == EVENT_1
    assert hashlib.sha256(EVENT_1.encode("utf-8")).hexdigest() == EVENT_1_DIGEST
    assert canonical.event_digest(row).hex() == EVENT_1_DIGEST


def test_the_canonical_json_writes_what_json_writes_and_falls_back_to_it() -> None:
    value = {"b": [1, None, True], "a": {"z": '引号"\\\n\u2028', "_": -5, "10": 2**70}, "é": "x"}
    assert canonical.canonical_json(value) == json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    assert canonical.event_json('{"rows":1e16,"detail":{"x":NaN}}') == b'{"detail":{"x":NaN},"rows":1e+16}'
    assert canonical.event_json('{"rows":1e16,"detail":{"x":null}}') == b'{"detail":{"x":null},"rows":1e16}'


def test_blocks_chain_on_from_seal_to_seal_and_each_new_head_is_published_once(
    engine: Engine, key: AuditKey, base: tuple[int, int], tmp_path: Path
) -> None:
    (n, b), heads_file = base, tmp_path / "audit" / "heads.jsonl"
    helpers.write_events(engine, 12)
    first = helpers.seal(engine, key, heads_file, block_size=5)
    helpers.write_events(engine, 4)
    second = helpers.seal(engine, key, heads_file, block_size=5)
    nothing = helpers.seal(engine, key, heads_file, block_size=5)

    assert (first.sealed_blocks, first.sealed_rows, second.sealed_blocks, second.sealed_rows) == (3, 12, 1, 4)
    assert (nothing.sealed_blocks, nothing.head) == (0, second.head)
    assert ranges(engine, b) == [
        (b + 1, n + 1, n + 5, 5), (b + 2, n + 6, n + 10, 5), (b + 3, n + 11, n + 12, 2), (b + 4, n + 13, n + 16, 4),
    ]  # fmt: skip
    blocks = helpers.blocks(engine)
    assert blocks[0].previous_hash == canonical.GENESIS
    assert all(later.previous_hash == earlier.hash for earlier, later in itertools.pairwise(blocks))
    assert [line.head.block for line in heads.read(heads_file) if line.head] == [b + 3, b + 4]
    assert first.head is not None and heads.publish(heads_file, first.head) is False  # never an older head again
    assert helpers.check(engine, frozenset([key.public_key]), heads_file).ok


def test_a_head_recomputes_and_its_signature_checks_without_the_database(engine: Engine, key: AuditKey) -> None:
    helpers.write_events(engine, 3)
    head = helpers.seal(engine, key, None).head
    assert head is not None
    assert canonical.block_hash(head) == head.hash and head.public_key == key.public_key
    assert signature_valid(head.public_key, head.signature, head.hash)
    assert not signature_valid(head.public_key, head.signature, canonical.GENESIS)


def test_ids_rolled_back_at_the_end_belong_to_the_last_block(
    postgres: Engine, key: AuditKey, base: tuple[int, int]
) -> None:
    (n, b) = base
    helpers.write_events(postgres, 3, gap_after=3)  # n + 4 drawn and rolled back
    helpers.seal(postgres, key, None)
    helpers.write_events(postgres, 1)  # n + 5
    helpers.seal(postgres, key, None)

    assert ranges(postgres, b) == [(b + 1, n + 1, n + 4, 3), (b + 2, n + 5, n + 5, 1)]
    assert helpers.check(postgres, frozenset([key.public_key])).ok


def test_a_seal_waits_for_a_transaction_that_may_still_commit_a_lower_id(
    postgres: Engine, key: AuditKey, base: tuple[int, int]
) -> None:
    (n, b) = base
    with postgres.connect() as slow:
        slow.execute(insert(AuditEvent), [helpers.event(1)])  # n + 1, not committed yet
        helpers.write_events(postgres, 1)  # n + 2, committed
        with session_scope(postgres) as session:
            waiting = chain.seal(session, key, block_size=10, wait_seconds=0.2)
        assert (waiting.waiting, waiting.sealed_rows, waiting.unsealed.count) == (True, 0, 1)
        slow.commit()

    sealed = helpers.seal(postgres, key, None)

    assert (sealed.waiting, sealed.sealed_rows) == (False, 2)
    assert ranges(postgres, b) == [(b + 1, n + 1, n + 2, 2)]


def test_a_transaction_of_another_database_does_not_hold_a_seal_up(
    postgres: Engine, key: AuditKey, base: tuple[int, int], database_factory: Any
) -> None:
    other = make_engine(database_factory("postgresql"))
    with other.connect() as elsewhere:
        elsewhere.execute(insert(AuditEvent), [helpers.event(1)])  # a running transaction with an xid, elsewhere
        helpers.write_events(postgres, 2)
        with session_scope(postgres) as session:
            report = chain.seal(session, key, block_size=10, wait_seconds=0.5)
        elsewhere.rollback()
    other.dispose()
    assert (report.waiting, report.sealed_rows) == (False, 2)


def test_a_seal_runs_in_a_transaction_of_its_own_and_one_at_a_time(
    postgres: Engine, key: AuditKey, base: tuple[int, int]
) -> None:
    helpers.write_events(postgres, 2)
    with session_scope(postgres) as session:
        audit.record(session, "user:someone", None, "data.read", "done")
        with pytest.raises(SealNeedsOwnTransaction):
            chain.seal(session, key, block_size=10, wait_seconds=0)
        session.rollback()

    with postgres.connect() as other:
        other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": chain.SEAL_LOCK})
        with session_scope(postgres) as session:
            busy = chain.seal(session, key, block_size=10, wait_seconds=0)
        other.rollback()
    assert (busy.busy, busy.sealed_rows) == (True, 0)
    assert helpers.seal(postgres, key, None).sealed_rows == 2


def test_an_audit_id_is_drawn_only_once_its_transaction_has_a_transaction_id(postgres: Engine) -> None:
    with postgres.connect() as connection:
        assert connection.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is None
        connection.scalar(text("SELECT nextval(pg_get_serial_sequence('audit_event', 'id'))"))
        assert connection.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is None  # a bare sequence: none
        connection.rollback()
        drawn = connection.scalar(text("SELECT audit_event_next_id()"))
        assert drawn and connection.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is not None
        connection.rollback()


def test_a_sequence_that_caches_ids_is_refused(postgres: Engine, key: AuditKey) -> None:
    helpers.write_events(postgres, 1)
    with postgres.begin() as connection:
        connection.execute(text("ALTER SEQUENCE audit_event_id_seq CACHE 20"))
    with pytest.raises(SealUnsafe, match="caches 20 values per session"), session_scope(postgres) as session:
        chain.seal(session, key, block_size=10, wait_seconds=0)


def test_seals_beside_concurrent_writers_never_seal_past_a_running_transaction(
    engine: Engine, key: AuditKey, base: tuple[int, int]
) -> None:
    """Writers hold their events a while before they commit (some roll back, some had a transaction id long
    before); a seal runs over and over meanwhile. Every event ends up sealed, each exactly where it belongs."""
    stop, rolled_back = threading.Event(), 0

    def write(seed: int) -> None:
        nonlocal rolled_back
        chance = random.Random(seed)
        while not stop.is_set():
            with engine.connect() as connection:
                if chance.random() < 0.3 and engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_current_xact_id()"))
                    time.sleep(chance.random() * 0.01)
                connection.execute(insert(AuditEvent), [helpers.event(chance.randrange(100))] * chance.randint(1, 3))
                time.sleep(chance.random() * 0.02)
                if chance.random() < 0.1:
                    connection.rollback()
                    rolled_back += 1
                else:
                    connection.commit()
            if engine.dialect.name == "sqlite":
                time.sleep(0.01)  # SQLite's busy handler is not fair: without a breath the seal may starve

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(8)]
    for writer in writers:
        writer.start()
    seals, started = 0, time.monotonic()
    try:  # at least 3 s and 5 seals that sealed something; at most 60 s
        while (seals < 5 or time.monotonic() < started + 3) and time.monotonic() < started + 60:
            seals += helpers.seal(engine, key, None, block_size=50).sealed_blocks > 0
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    helpers.seal(engine, key, None, block_size=50)

    result = helpers.check(engine, frozenset([key.public_key]))
    assert result.ok, result.failures[:3]
    assert seals >= 5 and rolled_back and result.unsealed_count == 0
