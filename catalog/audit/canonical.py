"""What the audit chain hashes: the canonical form of an event and of a block.

An event's canonical form is a JSON object of every column but the id, keys sorted, compact, UTF-8 (non-ASCII as
is), times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; it is committed to as its id (8 bytes) and the SHA-256 of
that JSON. The database writes each event as a JSON object (the JSON columns' stored text as they are, the times
already canonical), so that one decode and one encode per event remain in Python: SQLite and PostgreSQL give the
same bytes (a test pins them). A block's hash is the SHA-256 of the canonical JSON of its number, id range, row
count, rows hash, the previous block's hash and the time it was sealed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import JSON, ColumnElement, String, Text, cast, func, literal, type_coerce

from catalog.audit.models import AuditBlock, AuditEvent
from catalog.db import UTCDateTime

if TYPE_CHECKING:
    from catalog.audit.schemas import SignedHead

GENESIS = "0" * 64  # the previous hash of block 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_POSTGRES_TIME = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'  # TIME_FORMAT in to_char's words
_TABLE = AuditEvent.__table__
_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder()


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def canonical_json(value: Any, *, fast: bool = True) -> bytes:
    """Compact JSON, keys sorted, UTF-8 (non-ASCII as is), as ``json.dumps(sort_keys=True, ensure_ascii=False,
    separators=(",", ":"))`` writes it. msgspec writes the same bytes five times faster, floats aside (it writes
    1e16 and 1e-7, json 1e+16 and 1e-07): what is hashed is msgspec's form, unless the stored JSON held what msgspec
    does not read (NaN, a lone surrogate), then json's (``fast`` False)."""
    if fast:
        return _ENCODER.encode(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


@cache
def event_as_json(dialect: str) -> ColumnElement[str]:
    """SQL that writes an event (every column but the id) as one JSON object, on ``dialect``."""
    array: ColumnElement[str] = literal("{")
    columns = sorted((column for column in _TABLE.c if column.name != "id"), key=lambda column: column.name)
    for number, column in enumerate(columns):
        array = array + literal(("," if number else "") + json.dumps(column.name) + ":") + _value(column, dialect)
    return array + literal("}")


def _value(column: Any, dialect: str) -> ColumnElement[str]:
    if isinstance(column.type, JSON):
        return func.coalesce(cast(column, Text), "null")  # the stored text, parsed in Python
    if isinstance(column.type, UTCDateTime):  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        value = (
            func.to_char(func.timezone("UTC", column), _POSTGRES_TIME)
            if dialect == "postgresql"
            else type_coerce(func.replace(type_coerce(column, String), " ", "T"), String) + "Z"
        )
        return _quoted(value, dialect)
    return _quoted(column, dialect)


def _quoted(value: Any, dialect: str) -> ColumnElement[str]:
    quoted = cast(func.to_json(value), Text) if dialect == "postgresql" else func.json_quote(value)
    return func.coalesce(quoted, "null")


def event_json(written: str) -> bytes:
    """An event's canonical JSON from the object the database wrote (``event_as_json``)."""
    try:
        return canonical_json(_DECODER.decode(written))
    except msgspec.MsgspecError:
        return canonical_json(json.loads(written), fast=False)


def event_digest(row: Sequence[Any]) -> bytes:
    """SHA-256 of an event's canonical JSON; ``row`` is (id, the database's JSON of it)."""
    return hashlib.sha256(event_json(row[1])).digest()


@dataclass
class RowsHasher:
    """The running rows hash of one block, its row count and (``indexed``) its index: each id and its digest's
    first 8 bytes, kept with the block so that verification can name the events that differ."""

    indexed: bool = True
    count: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)
    _index: bytearray = field(default_factory=bytearray)

    def add(self, event_id: int, digest: bytes) -> None:
        key = event_id.to_bytes(8, "big")
        self._hash.update(key + digest)
        if self.indexed:
            self._index += key + digest[:8]
        self.count += 1

    @property
    def rows_hash(self) -> str:
        return str(self._hash.hexdigest())

    @property
    def index(self) -> bytes:
        return bytes(self._index)


def read_index(index: bytes) -> list[tuple[int, bytes]]:
    """(id, first 8 bytes of its digest) pairs of a block's index."""
    return [(int.from_bytes(index[at : at + 8], "big"), index[at + 8 : at + 16]) for at in range(0, len(index), 16)]


def block_hash(block: AuditBlock | SignedHead) -> str:
    """The hash of a block (or of a head: the same fields), from what it covers."""
    number = block.id if isinstance(block, AuditBlock) else block.block
    sealed_at = canonical_time(block.sealed_at) if isinstance(block, AuditBlock) else block.sealed_at
    covered = {"block": number, "first_id": block.first_id, "last_id": block.last_id, "row_count": block.row_count,
               "rows_hash": block.rows_hash, "previous_hash": block.previous_hash, "sealed_at": sealed_at}  # fmt: skip
    return hashlib.sha256(canonical_json(covered)).hexdigest()
