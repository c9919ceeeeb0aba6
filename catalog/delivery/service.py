"""Data delivery: what a principal may read of an item's version, and the rows, masked by classification.

A signed-in principal reads the fields of its department's active subscription; a field whose current level
is above the subscription's approved level is masked by its rule (or left out, for ``drop``), in every format.
An anonymous caller reads published open-data items, level-1 fields only. Filters are equality on fields the
caller sees unmasked (a filter on a masked field would tell its values).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.classification.masking import mask
from catalog.classification.types import DataType, MaskingRule
from catalog.errors import DomainError, Forbidden, NotFound
from catalog.ingest.models import ItemVersion
from catalog.ingest.publish import ROW_COLUMN, positional_table
from catalog.items.errors import ItemNotFound
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ItemStatus
from catalog.subscriptions.service import active_for

MAX_PAGE = 1000
STREAM_BATCH = 5000
OPEN_DATA_LEVEL = 1
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "是"), ("false", "0", "no", "否")


class NoActiveSubscription(Forbidden):
    code = "no_active_subscription"


class VersionNotFound(NotFound):
    code = "version_not_found"


class InvalidFilter(DomainError):
    code = "invalid_filter"


@dataclass(frozen=True)
class ShownField:
    name: str
    column: str  # the version table's column (f1, f2 ...)
    data_type: DataType
    masked: bool
    masking: MaskingRule


@dataclass(frozen=True)
class Grant:
    """What one principal may read of one version of one item."""

    item: str
    version: int
    table_name: str
    version_fields: list[dict[str, Any]]  # every column of the version, as recorded when it was published
    fields: list[ShownField]  # what is returned, in declared order
    subscription_id: int | None

    @property
    def names(self) -> list[str]:
        return [field.name for field in self.fields]

    @property
    def masked(self) -> list[str]:
        return [field.name for field in self.fields if field.masked]


@dataclass(frozen=True)
class _DeclaredField:
    name: str
    data_type: DataType
    level: int
    masking: MaskingRule


def grant_for(session: Session, principal: Principal, item_code: str, version: int | None = None) -> Grant:
    item = session.execute(
        select(CatalogItem.id, CatalogItem.status, CatalogItem.open_data).where(CatalogItem.code == item_code)
    ).one_or_none()
    if item is None or item.status != ItemStatus.PUBLISHED or (principal.anonymous and not item.open_data):
        raise ItemNotFound(item_code)
    declared = _declared_fields(session, item.id)
    subscription = None if principal.anonymous else active_for(session, item.id, str(principal.department))
    if subscription is not None:
        approved = [f for f in declared if f.name in subscription.fields]
        level, subscription_id = subscription.approved_level or 0, subscription.id
    elif item.open_data:  # what anyone may read; signing in never gives less
        approved, level, subscription_id = [f for f in declared if f.level <= OPEN_DATA_LEVEL], OPEN_DATA_LEVEL, None
    else:
        raise NoActiveSubscription(f"{principal.department} has no active subscription to {item_code}")
    published = _version(session, item.id, item_code, version)
    columns = {field["name"]: field["column"] for field in published.fields}
    shown = [
        ShownField(f.name, columns[f.name], f.data_type, f.level > level, _effective(f.masking))
        for f in approved
        if f.name in columns and not (f.level > level and f.masking is MaskingRule.DROP)
    ]
    return Grant(item_code, published.number, published.table_name, list(published.fields), shown, subscription_id)


def _effective(masking: MaskingRule) -> MaskingRule:
    """A field declared with masking none (allowed below level 3) is still hidden when it must be masked."""
    return MaskingRule.REDACT if masking is MaskingRule.NONE else masking


def _declared_fields(session: Session, item_id: int) -> list[_DeclaredField]:
    """The item's fields as they are declared now (their current levels decide the masking), in order."""
    rows = session.execute(
        select(ItemField.name, ItemField.data_type, ItemField.level, ItemField.masking)
        .where(ItemField.item_id == item_id)
        .order_by(ItemField.position)
    )
    return [_DeclaredField(row.name, DataType(row.data_type), row.level, MaskingRule(row.masking)) for row in rows]


def _version(session: Session, item_id: int, item_code: str, number: int | None) -> ItemVersion:
    statement = select(ItemVersion).where(ItemVersion.item_id == item_id)
    if number is None:
        current = select(CatalogItem.current_version_id).where(CatalogItem.id == item_id).scalar_subquery()
        statement = statement.where(ItemVersion.id == current)
    else:
        statement = statement.where(ItemVersion.number == number)
    published = session.scalar(statement)
    if published is None:
        which = "no version yet" if number is None else f"no version {number} (or it is past its retention)"
        raise VersionNotFound(f"item {item_code} has {which}")
    return published


def rows_query(grant: Grant, filters: Mapping[str, str], after: int = 0, limit: int | None = None) -> Select[Any]:
    table = positional_table(grant.table_name, [DataType(field["data_type"]) for field in grant.version_fields])
    columns = [table.c[ROW_COLUMN], *(table.c[field.column] for field in grant.fields)]
    statement = select(*columns).where(table.c[ROW_COLUMN] > after).order_by(table.c[ROW_COLUMN])
    by_name = {field.name: field for field in grant.fields}
    for name, text in sorted(filters.items()):
        field = by_name.get(name)
        if field is None or field.masked:
            raise InvalidFilter(f"{name} is not a field you can filter on: filters apply to fields you see unmasked")
        statement = statement.where(table.c[field.column] == _typed(field, text))
    return statement.limit(limit) if limit is not None else statement


def count_rows(connection: Connection, grant: Grant, filters: Mapping[str, str]) -> int:
    inner = rows_query(grant, filters).order_by(None).subquery()
    return int(connection.scalar(select(func.count()).select_from(inner)) or 0)


def read_page(
    connection: Connection, grant: Grant, filters: Mapping[str, str], after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` rows after row number ``after`` (keyset), as JSON-ready dicts, and the next ``after``."""
    limit = max(1, min(limit, MAX_PAGE))
    rows = connection.execute(rows_query(grant, filters, after, limit + 1)).all()
    page = [_record(grant, row) for row in rows[:limit]]
    return page, (rows[limit - 1][0] if len(rows) > limit else None)


def stream_rows(connection: Connection, grant: Grant, filters: Mapping[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Every row, in batches, through a server-side cursor: memory stays flat however large the version."""
    result = connection.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(
        rows_query(grant, filters)
    )
    for batch in result.partitions(STREAM_BATCH):
        yield [_record(grant, row) for row in batch]


def csv_chunks(grant: Grant, batches: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["_row", *grant.names])
    cells = [
        (field.name, _csv_text if field.masked or field.data_type == DataType.STRING else _csv_value)
        for field in grant.fields
    ]
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")  # a BOM: spreadsheet programs then read UTF-8 right
    for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([row["_row"], *(cell(row[name]) for name, cell in cells)] for row in batch)
        yield buffer.getvalue().encode("utf-8")


def jsonl_chunks(batches: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    for batch in batches:
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch).encode("utf-8")


def parquet_chunks(grant: Grant, batches: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    schema = pa.schema([("_row", pa.int64()), *((field.name, _arrow_type(field)) for field in grant.fields)])
    sink = _DrainableSink()
    with pq.ParquetWriter(sink, schema) as writer:
        for batch in batches:
            columns = [_arrow_column([row[field.name] for row in batch], field.type) for field in schema]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            yield sink.drain()
    yield sink.drain()


class _DrainableSink(io.RawIOBase):
    """A write-only file whose bytes are taken away as they come: a Parquet file streamed row group by group."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        chunk, self._parts = b"".join(self._parts), []
        return chunk


def _arrow_column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """Dates and datetimes arrive as ISO text (as in JSON): Arrow parses them back to their types."""
    if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
        return pa.array(values, type=pa.string()).cast(arrow_type)
    return pa.array(values, type=arrow_type)


def _arrow_type(field: ShownField) -> pa.DataType:
    if field.masked:
        return pa.string()
    return {
        DataType.INTEGER: pa.int64(),
        DataType.DATE: pa.date32(),
        DataType.DATETIME: pa.timestamp("us"),
        DataType.BOOLEAN: pa.bool_(),
    }.get(field.data_type, pa.string())  # decimals as their exact text


def _record(grant: Grant, row: Sequence[Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"_row": row[0]}
    for field, value in zip(grant.fields, row[1:], strict=True):
        record[field.name] = _shown(field, value)
    return record


def _shown(field: ShownField, value: Any) -> Any:
    if value is None:
        return None
    if field.masked:
        return mask(field.masking, _text(value))
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _csv_text(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return "" if value is None else value


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def _typed(field: ShownField, text: str) -> Any:
    try:
        if field.data_type is DataType.INTEGER:
            return int(text)
        if field.data_type is DataType.DECIMAL:
            return Decimal(text)
        if field.data_type is DataType.DATE:
            return date.fromisoformat(text)
        if field.data_type is DataType.DATETIME:
            return datetime.fromisoformat(text)
        if field.data_type is DataType.BOOLEAN:
            if text.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise ValueError(text)
            return text.lower() in TRUE_WORDS
    except (ValueError, InvalidOperation):
        raise InvalidFilter(f"{field.name}: {text!r} is not a {field.data_type.value}") from None
    return text
