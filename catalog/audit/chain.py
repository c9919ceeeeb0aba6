"""Sealing the audit trail into hash-chained, signed blocks (what is hashed: ``catalog.audit.canonical``).

Blocks follow each other in id order, each linked to the previous block's hash; the platform's Ed25519 key (a
file outside the database) signs each block's hash. Changing, deleting, inserting or reordering a sealed event
changes its block's rows hash; rewriting the block too breaks its signature, the next block's link and the heads
kept outside the database (``catalog.audit.heads``).

Sealing never seals a range a running transaction can still add events to. SQLite has one writer at a time and
the seal's transaction holds the write lock: every event there is committed and final. On PostgreSQL ids come
from a sequence, and a transaction holding id 10 may commit after one holding id 11; an event's id is drawn only
once its transaction has a transaction id (migration 0008), so the seal reads the sequence's last value L, then
the transaction ids running in this database (pg_stat_activity), and seals up to L only once every one of those
has ended. (A snapshot would not do: it leaves out running transactions whose ids are above the last one to have
ended.) That needs the sequence to hand out ids one at a time (CACHE 1, as SERIAL makes it): ids cached by a
session could be drawn later below L. Ids missing from a sealed range (rolled back) are fine: a block hashes the
events that exist and their count.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.audit.canonical import GENESIS, RowsHasher, block_hash, canonical_time, event_as_json, event_digest
from catalog.audit.errors import SealNeedsOwnTransaction, SealUnsafe
from catalog.audit.models import AuditBlock, AuditEvent
from catalog.audit.schemas import SealReport, SignedHead, UnsealedRead
from catalog.audit.signing import AuditKey
from catalog.db import utcnow

EventRow = tuple[int, str]  # an event's id and its JSON as the database writes it (canonical.event_as_json)
T = TypeVar("T")
STREAM_ROWS = 10_000  # events fetched at a time (a server-side cursor on PostgreSQL): memory stays bounded
SEAL_LOCK = 0x6461_7461_7368_6172  # PostgreSQL advisory lock: one seal at a time ("datashar")

AUDIT_ID_SEQUENCE = text("""
    SELECT pg_sequence_last_value(sequence.seqrelid), sequence.seqcache FROM pg_sequence AS sequence
    WHERE sequence.seqrelid = CAST(pg_get_serial_sequence('audit_event', 'id') AS regclass)
""")
# The transaction ids of the transactions running in this database now (regular ones and prepared ones), as text.
RUNNING_TRANSACTIONS = text("""
    SELECT CAST(backend_xid AS text) FROM pg_stat_activity
    WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    UNION ALL SELECT CAST(transaction AS text) FROM pg_prepared_xacts WHERE database = current_database()
""")


def signed_head(block: AuditBlock) -> SignedHead:
    return SignedHead(block=block.id, first_id=block.first_id, last_id=block.last_id, row_count=block.row_count,
                      rows_hash=block.rows_hash, previous_hash=block.previous_hash,
                      sealed_at=canonical_time(block.sealed_at), hash=block.hash, public_key=block.public_key,
                      signature=block.signature)  # fmt: skip


def stream_events(session: Session, first_id: int, last_id: int) -> Iterator[EventRow]:
    """The events with ids in [first_id, last_id], in id order, as (id, their JSON as the database writes it), a
    few thousand at a time. On PostgreSQL a thread reads the next rows while the caller hashes these (the server
    writes the JSON meanwhile, on another core); the caller leaves the session alone until it has them all."""
    table = AuditEvent.__table__
    dialect = session.get_bind().dialect.name
    statement = select(table.c.id, event_as_json(dialect)).where(table.c.id.between(first_id, last_id))
    result = session.execute(statement.order_by(table.c.id).execution_options(stream_results=True,
                                                                              yield_per=STREAM_ROWS))  # fmt: skip
    with result:
        rows = cast(Iterator[EventRow], iter(result))
        yield from read_ahead(cast(Iterator[list[EventRow]], result.partitions())) if dialect == "postgresql" else rows


def read_ahead(batches: Iterable[Sequence[T]], depth: int = 2) -> Iterator[T]:
    """The rows of ``batches``, read by a thread of its own up to ``depth`` batches ahead of the caller."""
    ready: queue.Queue[Sequence[T] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: Sequence[T] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand(batch):
                    return
            hand(None)
        except BaseException as error:  # handed to the caller, raised there
            hand(error)

    reader = threading.Thread(target=read, name="audit-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join()


def last_block(session: Session) -> AuditBlock | None:
    return session.scalars(select(AuditBlock).order_by(AuditBlock.id.desc()).limit(1)).first()


def head(session: Session) -> SignedHead | None:
    """The newest block's signed head, or None before anything was sealed."""
    block = last_block(session)
    return None if block is None else signed_head(block)


def unsealed(session: Session, after_id: int) -> UnsealedRead:
    count, first, last = session.execute(
        select(func.count(), func.min(AuditEvent.id), func.max(AuditEvent.id)).where(AuditEvent.id > after_id)
    ).one()
    return UnsealedRead(count=count, first_id=first, last_id=last)


def seal(session: Session, key: AuditKey, *, block_size: int, wait_seconds: float) -> SealReport:
    """Seal every event that is safe to seal into blocks of ``block_size`` events (the last one may be smaller),
    chained to the newest block and signed with ``key``. Run it in a transaction of its own (the edge commits)."""
    if session.get_bind().dialect.name == "postgresql":
        if session.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is not None:
            raise SealNeedsOwnTransaction()
        if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SEAL_LOCK}):
            return _report(session, [], busy=True)
    previous = last_block(session)
    sealed_to = previous.last_id if previous else 0
    watermark = _watermark(session, sealed_to, wait_seconds)
    if watermark is None:
        return _report(session, [], waiting=True)
    blocks = _seal_range(session, key, previous, watermark, block_size)
    session.add_all(blocks)
    session.flush()
    return _report(session, blocks)


def _report(session: Session, blocks: list[AuditBlock], *, waiting: bool = False, busy: bool = False) -> SealReport:
    newest = blocks[-1] if blocks else last_block(session)
    return SealReport(sealed_blocks=len(blocks), sealed_rows=sum(block.row_count for block in blocks),
                      head=None if newest is None else signed_head(newest),
                      unsealed=unsealed(session, newest.last_id if newest else 0), waiting=waiting,
                      busy=busy)  # fmt: skip


def _watermark(session: Session, sealed_to: int, wait_seconds: float) -> int | None:
    """The highest id no running transaction can still add an event at or below; None if that takes longer than
    ``wait_seconds`` (the next run tries again)."""
    if session.get_bind().dialect.name != "postgresql":
        return int(session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0))) or 0)  # the write lock is ours
    last, cached = session.execute(AUDIT_ID_SEQUENCE).one()
    if cached != 1:  # ids a session cached may be drawn by a transaction that starts later, below ``last``
        raise SealUnsafe(f"the audit_event id sequence caches {cached} values per session; sealing needs CACHE 1")
    if last is None or last <= sealed_to:
        return sealed_to
    holders = set(session.scalars(RUNNING_TRANSACTIONS))  # read after the sequence: all holding ids <= last
    deadline = time.monotonic() + wait_seconds
    while holders:
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
        session.execute(text("SELECT pg_stat_clear_snapshot()"))  # pg_stat_activity anew, not as first read
        holders &= set(session.scalars(RUNNING_TRANSACTIONS))
    return int(last)


def _seal_range(
    session: Session, key: AuditKey, previous: AuditBlock | None, watermark: int, block_size: int
) -> list[AuditBlock]:
    sealed_at = utcnow()
    blocks: list[AuditBlock] = []
    first_id = previous.last_id + 1 if previous else 1
    hasher = RowsHasher()
    for row in stream_events(session, first_id, watermark):
        hasher.add(row[0], event_digest(row))
        if hasher.count == block_size:
            previous = _block(key, previous, first_id, row[0], hasher, sealed_at)
            blocks.append(previous)
            first_id, hasher = row[0] + 1, RowsHasher()
    if hasher.count:  # the last block reaches the watermark: ids rolled back at its end are behind it too
        blocks.append(_block(key, previous, first_id, watermark, hasher, sealed_at))
    return blocks


def _block(
    key: AuditKey, previous: AuditBlock | None, first_id: int, last_id: int, hasher: RowsHasher, sealed_at: datetime
) -> AuditBlock:
    block = AuditBlock(id=previous.id + 1 if previous else 1, first_id=first_id, last_id=last_id,
                       row_count=hasher.count, rows_hash=hasher.rows_hash,
                       previous_hash=previous.hash if previous else GENESIS, sealed_at=sealed_at,
                       public_key=key.public_key, row_index=hasher.index)  # fmt: skip
    block.hash = block_hash(block)
    block.signature = key.sign_block(block.hash)
    return block
