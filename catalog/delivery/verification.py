"""Verification look-ups (数据核验): a consumer sends records it already holds, each with the item's key (for example a
resident ID) and perhaps more of its fields (a name), and learns per record whether the current version holds a row
with that key and those values, and for a match only the fields its subscription grants, masked as its reads are.

A verification subscription (approved at the key's level too) matches by the key whatever level its answers are
approved at; any other grant matches only by a key it shows unmasked. A record may compare only fields the grant shows
unmasked (no oracle on a masked one). The key is never sent back unless granted, and then as granted; no other column
of the row is ever returned. One statement per call, on the version's key index. Audited with the counts only: the
values sent are personal data and never logged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification.types import DataType
from catalog.delivery.access_cache import ItemSource
from catalog.delivery.service import (
    ROW_COLUMN,
    Grant,
    NoActiveSubscription,
    ShownField,
    _batch_of,
    _typed,
    _version_table,
    json_rows,
    scoped,
    shown_batch,
)
from catalog.errors import DomainError

MAX_RECORDS = 1000


class InvalidVerification(DomainError):
    code = "invalid_verification"


@dataclass(frozen=True)
class Verified:
    version: int
    key: list[str]
    fields: list[str]  # what a match returns
    masked_fields: list[str]
    results: list[dict[str, Any]]  # per record, in order: {"match": bool, "fields": {...} | None}

    @property
    def matched(self) -> int:
        return sum(1 for result in self.results if result["match"])


def verify(
    connection: Connection,
    session: Session,
    cache: ItemSource,
    grant: Grant,
    records: Sequence[Mapping[str, Any]],
) -> Verified:
    """Each record matched against the grant's version by the item's key and any other granted field it gives."""
    if not 1 <= len(records) <= MAX_RECORDS:
        raise InvalidVerification(f"send 1 to {MAX_RECORDS} records")
    key = _key_fields(session, cache, grant)
    typed = [_typed_record(index, record, key, grant) for index, record in enumerate(records, 1)]
    found = _rows_by_key(connection, grant, key, {record.key for record in typed})
    matches = [
        next((row for row in found.get(record.key, ()) if _same(row, record.compared)), None) for record in typed
    ]
    shown = iter(_shown(grant, [row for row in matches if row is not None]))
    results = [{"match": row is not None, "fields": None if row is None else next(shown)} for row in matches]
    return Verified(grant.version, [field.name for field in key], grant.names, grant.masked, results)


def audit_event(principal: Principal, grant: Grant, verified: Verified) -> dict[str, Any]:
    """The look-up's audit: who, which item, version and subscription, how many records and matches; no value."""
    return audit.event(principal.subject, principal.department, "data.verify", "allowed", item_code=grant.item,
                       version=grant.version, subscription_id=grant.subscription_id, records=len(verified.results),
                       matched=verified.matched, fields_returned=grant.names, fields_masked=grant.masked)  # fmt: skip


@dataclass(frozen=True)
class _Record:
    key: tuple[Any, ...]
    compared: dict[str, Any]  # column -> typed value, the other granted fields the record gives


def _key_fields(session: Session, cache: ItemSource, grant: Grant) -> list[ShownField]:
    item = cache.item(session, grant.item)
    columns = {field["name"]: field for field in grant.version_fields}
    key = [
        ShownField(field.name, columns[field.name]["column"], DataType(columns[field.name]["data_type"]), False,
                   field.masking)
        for field in (item.declared if item is not None else ())
        if field.key and field.name in columns
    ]  # fmt: skip
    if not key:
        raise InvalidVerification(f"item {grant.item} has no key in its current version: it cannot be verified")
    shown_unmasked = {field.name for field in grant.fields if not field.masked}
    if not grant.verifies_by_key and any(field.name not in shown_unmasked for field in key):
        raise NoActiveSubscription(f"look-ups of {grant.item} by its key need a verification subscription: the key "
                                   "is not a field this subscription shows unmasked")  # fmt: skip
    return key


def _typed_record(index: int, record: Mapping[str, Any], key: list[ShownField], grant: Grant) -> _Record:
    granted = {field.name: field for field in grant.fields if not field.masked}  # no oracle on a masked field
    if any("\x00" in str(name) or "\x00" in str(value) for name, value in record.items()):
        raise InvalidVerification(f"record {index} holds a NUL character, which no stored value can")
    missing = [field.name for field in key if _text(record.get(field.name)) is None]
    if missing:
        raise InvalidVerification(f"record {index} lacks the key field(s) {', '.join(missing)}")
    others = [name for name in record if name not in granted and name not in {field.name for field in key}]
    if others:
        raise InvalidVerification(f"record {index} gives field(s) {', '.join(sorted(others))} that the subscription "
                                  "does not show unmasked: a record gives the key and those fields only")  # fmt: skip
    key_values = tuple(_typed(field, str(_text(record[field.name]))) for field in key)
    compared = {
        granted[name].column: _typed(granted[name], str(text))
        for name, value in record.items()
        if name in granted and name not in {field.name for field in key} and (text := _text(value)) is not None
    }
    return _Record(key_values, compared)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _rows_by_key(
    connection: Connection, grant: Grant, key: list[ShownField], keys: set[tuple[Any, ...]]
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The version's rows with any of these keys (the key index), by key; each row's stored columns by column."""
    data_types = tuple(DataType(field["data_type"]) for field in grant.version_fields)
    table = _version_table(grant.table_name, data_types)
    key_columns = [table.c[field.column] for field in key]
    needed = dict.fromkeys([ROW_COLUMN, *(field.column for field in key), *(field.column for field in grant.fields)])
    wanted = [table.c[column] for column in needed]
    condition = (
        key_columns[0].in_([values[0] for values in keys])
        if len(key_columns) == 1
        else tuple_(*key_columns).in_(sorted(keys, key=repr))
    )
    found: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in connection.execute(select(*wanted).where(condition, *scoped(table, grant))):
        stored = dict(row._mapping)
        found[tuple(stored[field.column] for field in key)].append(stored)
    return found


def _same(row: Mapping[str, Any], compared: Mapping[str, Any]) -> bool:
    return all(row[column] == value for column, value in compared.items())


def _shown(grant: Grant, rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The granted fields of the matched rows, masked as a read shows them (masked together, as a page is); the row
    number and nothing else left out."""
    if not rows:
        return []
    stored = [[row[ROW_COLUMN], *(row[field.column] for field in grant.fields)] for row in rows]
    shown = json_rows(shown_batch(grant, _batch_of(grant, stored)))
    for row in shown:
        row.pop(ROW_COLUMN, None)
    return shown
