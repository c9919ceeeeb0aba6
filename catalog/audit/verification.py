"""Verifying the audit chain: every block recomputed from its events, the links, the signatures, the heads kept
outside the database and any head given; the first thing that fails is named, with how (changed, missing,
inserted or reordered events; a block missing, altered, unlinked or badly signed; a head the chain lost)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.audit import heads
from catalog.audit.canonical import GENESIS, RowsHasher, block_hash, event_digest, read_index
from catalog.audit.chain import last_block, stream_events
from catalog.audit.chain import unsealed as unsealed_events
from catalog.audit.errors import NeverVerified
from catalog.audit.models import AuditBlock, AuditVerification
from catalog.audit.schemas import FailureRead, SignedHead
from catalog.audit.signing import signature_valid
from catalog.db import utcnow

MAX_FAILURES = 100  # reported one by one; beyond, counted
MAX_DIAGNOSED = 20  # failed blocks read again to name each event that differs; beyond, only the block is named
LOOKUP_CHUNK = 500


@dataclass
class Findings:
    found: list[FailureRead] = field(default_factory=list)
    more: int = 0

    def add(self, kind: str, message: str, block: int | None = None, audit_id: int | None = None) -> None:
        if len(self.found) < MAX_FAILURES:
            self.found.append(FailureRead(kind=kind, message=message, block=block, audit_id=audit_id))
        else:
            self.more += 1

    def ordered(self) -> list[FailureRead]:
        """The chain's own failures in chain order (the first one first), then the heads'."""
        found = sorted(self.found, key=lambda f: (f.kind.startswith("head"), f.block or 0, f.audit_id or 0))
        if self.more:
            found.append(FailureRead(kind="more_failures", message=f"{self.more} more failure(s) not listed"))
        return found


def verify(
    session: Session,
    *,
    trusted_keys: frozenset[str],
    heads_file: Path | None,
    given: Sequence[SignedHead] = (),
    from_block: int | None = None,
    to_block: int | None = None,
    by: str,
) -> AuditVerification:
    """Check the chain (blocks ``from_block``..``to_block``, all by default) and record the result (the edge
    commits it, whatever it says)."""
    started, findings = utcnow(), Findings()
    anchor, blocks = _blocks(session, from_block or 1, to_block)
    _check_links(anchor, blocks, from_block or 1, trusted_keys, findings)
    rows = _check_rows(session, blocks, findings)
    heads_checked = _check_heads(session, heads_file, given, trusted_keys, findings)
    newest = last_block(session)
    left = unsealed_events(session, newest.last_id if newest else 0)
    failures = findings.ordered()
    result = AuditVerification(started_at=started, finished_at=utcnow(), by=by, ok=not failures,
                               from_block=from_block, to_block=to_block, blocks_checked=len(blocks),
                               rows_checked=rows, heads_checked=heads_checked,
                               head_block=newest.id if newest else None, head_hash=newest.hash if newest else None,
                               unsealed_count=left.count, unsealed_first_id=left.first_id,
                               unsealed_last_id=left.last_id,
                               failures=[failure.model_dump() for failure in failures])  # fmt: skip
    session.add(result)
    session.flush()
    return result


def latest(session: Session) -> AuditVerification:
    found = session.scalars(select(AuditVerification).order_by(AuditVerification.id.desc()).limit(1)).first()
    if found is None:
        raise NeverVerified()
    return found


def _blocks(session: Session, first: int, last: int | None) -> tuple[AuditBlock | None, list[AuditBlock]]:
    """The block before ``first`` (to check the link to it) and the blocks in range, in chain order."""
    statement = select(AuditBlock).where(AuditBlock.id >= first - 1).order_by(AuditBlock.id)
    if last is not None:
        statement = statement.where(AuditBlock.id <= last)
    found = list(session.scalars(statement))
    if found and found[0].id == first - 1:
        return found[0], found[1:]
    return None, found


def _check_links(
    anchor: AuditBlock | None, blocks: list[AuditBlock], first: int, trusted: frozenset[str], findings: Findings
) -> None:
    if blocks and not trusted:
        findings.add("key_missing", "no audit signing key (nor trusted public key) to check the signatures with")
    previous, expected = anchor, first
    for block in blocks:
        if block.id != expected:
            findings.add("block_missing", f"blocks {expected}..{block.id - 1} are missing from the chain", expected)
        elif block.id > 1 and previous is None:
            findings.add("block_missing", f"block {block.id - 1}, which block {block.id} follows, is missing", block.id)
        else:
            _check_link(previous, block, findings)
        _check_block(block, trusted, findings)
        previous, expected = block, block.id + 1


def _check_link(previous: AuditBlock | None, block: AuditBlock, findings: Findings) -> None:
    first_id = previous.last_id + 1 if previous else 1
    if block.first_id != first_id or block.last_id < block.first_id:
        findings.add("block_range_broken", f"block {block.id} covers events {block.first_id}..{block.last_id}, "
                     f"expected from {first_id}", block.id)  # fmt: skip
    if block.previous_hash != (previous.hash if previous else GENESIS):
        findings.add("block_link_broken", f"block {block.id} does not link to the hash of block {block.id - 1}",
                     block.id)  # fmt: skip


def _check_block(block: AuditBlock, trusted: frozenset[str], findings: Findings) -> None:
    if block_hash(block) != block.hash:
        findings.add("block_altered", f"block {block.id}'s hash does not match what it covers", block.id)
    if trusted and block.public_key not in trusted:
        findings.add("key_untrusted", f"block {block.id} is signed by a key that is not trusted", block.id)
    elif not signature_valid(block.public_key, block.signature, block.hash):
        findings.add("signature_invalid", f"block {block.id}'s signature is not valid", block.id)


def _check_rows(session: Session, blocks: list[AuditBlock], findings: Findings) -> int:
    """Recompute every block's rows hash from its events (one pass, streamed); returns the events read. Blocks
    that fail are read again afterwards, to name what changed."""
    if not blocks:
        return 0
    rows, at, hasher = 0, 0, RowsHasher(indexed=False)
    failed: list[tuple[AuditBlock, int]] = []
    for row in stream_events(session, blocks[0].first_id, blocks[-1].last_id):
        while at < len(blocks) and row[0] > blocks[at].last_id:
            failed += [] if _holds(blocks[at], hasher) else [(blocks[at], hasher.count)]
            hasher, at = RowsHasher(indexed=False), at + 1
        if at == len(blocks) or row[0] < blocks[at].first_id:
            continue  # in no block of the range: a broken range, reported with the links
        hasher.add(row[0], event_digest(row))
        rows += 1
    for block in blocks[at:]:
        failed += [] if _holds(block, hasher) else [(block, hasher.count)]
        hasher = RowsHasher(indexed=False)
    for number, (block, count) in enumerate(failed):
        _explain(session, block, count, findings, diagnose=number < MAX_DIAGNOSED)
    return rows


def _holds(block: AuditBlock, hasher: RowsHasher) -> bool:
    return hasher.count == block.row_count and hasher.rows_hash == block.rows_hash


def _explain(session: Session, block: AuditBlock, count: int, findings: Findings, *, diagnose: bool) -> None:
    if diagnose:
        found = [(row[0], event_digest(row)[:8]) for row in stream_events(session, block.first_id, block.last_id)]
        index = session.scalar(select(AuditBlock.row_index).where(AuditBlock.id == block.id)) or b""
        if _diagnose(block.id, read_index(index), found, findings):
            return
    findings.add("block_rows_mismatch", f"block {block.id}: its events ({count}) no longer hash to what was "
                 f"sealed ({block.row_count} events)", block.id)  # fmt: skip


def _diagnose(block: int, sealed: list[tuple[int, bytes]], found: list[tuple[int, bytes]], findings: Findings) -> bool:
    """Name each event that differs from the block's index: changed, missing, inserted or reordered (an event
    holding what was sealed under another id). False when the index cannot tell."""
    sealed_by_id, found_by_id = dict(sealed), dict(found)
    sealed_as = {digest: event_id for event_id, digest in sealed}
    named = False
    for event_id in sorted(sealed_by_id.keys() | found_by_id.keys()):
        digest = found_by_id.get(event_id)
        origin = sealed_as.get(digest) if digest is not None else None
        if digest is None:
            findings.add("row_missing", f"event {event_id}, sealed in block {block}, is missing", block, event_id)
        elif event_id not in sealed_by_id:
            findings.add("row_inserted", f"event {event_id} was inserted into block {block}'s sealed range"
                         + (f" (a copy of event {origin})" if origin is not None else ""), block, event_id)  # fmt: skip
        elif digest == sealed_by_id[event_id]:
            continue
        elif origin is not None:
            findings.add("rows_reordered", f"event {event_id} holds what was sealed as event {origin} in block "
                         f"{block}: events were reordered", block, event_id)  # fmt: skip
        else:
            findings.add("row_changed", f"event {event_id} was changed after it was sealed in block {block}",
                         block, event_id)  # fmt: skip
        named = True
    return named


def _check_heads(
    session: Session, path: Path | None, given: Sequence[SignedHead], trusted: frozenset[str], findings: Findings
) -> int:
    """The heads file's lines, in order, and the heads given: each must be in the chain as signed."""
    checked: list[tuple[str, SignedHead]] = []
    last = 0
    for line in heads.read(path) if path is not None else ():
        if line.head is None:
            findings.add("head_unreadable", f"heads file line {line.number}: {line.problem}")
            continue
        if line.head.block < last:
            findings.add("head_out_of_order", f"heads file line {line.number}: block {line.head.block} after {last}",
                         line.head.block)  # fmt: skip
        last = max(last, line.head.block)
        checked.append((f"heads file line {line.number}", line.head))
    checked += [("the given head", head) for head in given]
    chain = _hashes(session, {head.block for _, head in checked})
    for where, head in checked:
        _check_head(where, head, chain.get(head.block), trusted, findings)
    return len(checked)


def _check_head(where: str, head: SignedHead, chained: str | None, trusted: frozenset[str], findings: Findings) -> None:
    if block_hash(head) != head.hash:
        findings.add("head_altered", f"{where}: its hash does not match what it covers", head.block)
    if not signature_valid(head.public_key, head.signature, head.hash):
        findings.add("head_signature_invalid", f"{where}: the signature is not valid", head.block)
    elif trusted and head.public_key not in trusted:
        findings.add("head_key_untrusted", f"{where}: signed by a key that is not trusted", head.block)
    if chained is None:
        findings.add("head_beyond_chain", f"{where}: block {head.block} is no longer in the chain", head.block)
    elif chained != head.hash:
        findings.add("head_mismatch", f"{where}: block {head.block} was {head.hash[:16]}…, the chain now has "
                     f"{chained[:16]}…", head.block)  # fmt: skip


def _hashes(session: Session, blocks: Iterable[int]) -> dict[int, str]:
    wanted, found = sorted(blocks), dict[int, str]()
    for at in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[at : at + LOOKUP_CHUNK]
        rows = session.execute(select(AuditBlock.id, AuditBlock.hash).where(AuditBlock.id.in_(chunk)))
        found.update((number, digest) for number, digest in rows)
    return found
