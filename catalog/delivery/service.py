"""Data delivery: what a principal may read of an item's version, and the rows, masked by classification.

A signed-in principal reads the fields of its department's active subscription; a field whose current level
is above the subscription's approved level is masked by its rule (or left out, for ``drop``), in every format.
An anonymous caller reads published open-data items, level-1 fields only. Filters are equality on fields the
caller sees unmasked (a filter on a masked field would tell its values).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pydantic_core
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification.masking import mask_column, mask_sql
from catalog.classification.types import DataType, MaskingRule
from catalog.db import utcnow
from catalog.delivery.access_cache import ActiveSubscription, DeclaredField, ItemSource, PublishedVersion
from catalog.errors import DomainError, Forbidden, NotFound
from catalog.ingest.models import ItemVersion
from catalog.ingest.publish import ROW_COLUMN, positional_table
from catalog.items.errors import ItemNotFound
from catalog.items.schemas import ItemStatus
from catalog.prefetch import prefetched
from catalog.subscriptions import scopes

MAX_PAGE = 1000
STREAM_BATCH = 5000
COPY_BLOCK = 4 << 20  # bytes of COPY output parsed at a time
OPEN_DATA_LEVEL = 1
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run a cell starting so as a formula
CSV_CHUNK = 1 << 20
POSTGRESQL_NAME_BYTES = 63  # PostgreSQL cuts longer column names short
ARROW_TYPES = {
    DataType.INTEGER: pa.int64(),
    DataType.DATE: pa.date32(),
    DataType.DATETIME: pa.timestamp("us"),
    DataType.BOOLEAN: pa.bool_(),
}  # others (text, and decimals as their exact text) are strings


VERIFY = "verify"  # a subscription's kind: look-ups of records by key, no reading of the data


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
    """What one principal may read of one version of one item, and how it is shown."""

    item: str
    version: int
    table_name: str
    row_count: int  # of the whole version
    # every column of the version, as recorded when it was published (the table name says which version it is)
    version_fields: tuple[Mapping[str, Any], ...] = dataclasses.field(compare=False, hash=False)
    fields: tuple[ShownField, ...]  # what is returned, in declared order
    subscription_id: int | None
    pseudonym_key: bytes  # the hash rule's key
    # A verification subscription's: look-ups by the item's key whatever the level (approved with the key's level).
    # Any other grant looks up only by a key it shows unmasked.
    verifies_by_key: bool = False
    scope: tuple[scopes.Term, ...] = ()  # the rows granted (none: every row), typed as the version's columns

    @property
    def whole_version(self) -> bool:
        return not self.scope

    @property
    def names(self) -> list[str]:
        return [field.name for field in self.fields]

    @property
    def masked(self) -> list[str]:
        return [field.name for field in self.fields if field.masked]


def grant_for(
    session: Session,
    cache: ItemSource,
    principal: Principal,
    item_code: str,
    version: int | None = None,
    verifying: bool = False,
) -> Grant:
    """What the principal may read of the item's version (``verifying``: what a verification look-up returns, which a
    verification subscription grants too; its data it does not)."""
    item = cache.item(session, item_code)
    if item is None or item.status != ItemStatus.PUBLISHED or (principal.anonymous and not item.open_data):
        raise ItemNotFound(item_code)
    subscription = None if principal.anonymous else item.subscription_of(str(principal.department), utcnow())
    if subscription is not None and subscription.kind == VERIFY and not verifying:
        if item.open_data:  # what anyone may read, a verification subscription does not take away
            subscription = None
        else:
            raise NoActiveSubscription(f"{principal.department}'s subscription to {item_code} is for verification: "
                                   "it answers look-ups of records (POST .../verify), it reads no data")  # fmt: skip
    if subscription is not None:
        approved = [f for f in item.declared if f.name in subscription.fields]
        subscription_id, masks = subscription.id, subscription.masks
    elif item.open_data:  # what anyone may read; signing in never gives less
        subscription_id, masks = None, _above_open_data
        approved = [f for f in item.declared if f.level <= OPEN_DATA_LEVEL]
    else:
        raise NoActiveSubscription(f"{principal.department} has no active subscription to {item_code}")
    published = item.current if version is None or (item.current and item.current.number == version) else None
    published = published or _pinned_version(session, item.id, item_code, version)
    columns = {field["name"]: field["column"] for field in published.fields}
    shown = tuple(
        ShownField(f.name, columns[f.name], f.data_type, masks(f.name, f.level), _effective(f.masking))
        for f in approved
        if f.name in columns and not (masks(f.name, f.level) and f.masking is MaskingRule.DROP)
    )
    by_key = subscription is not None and subscription.kind == VERIFY
    scope = _scope_of(subscription, item.declared, published, session)
    return Grant(item_code, published.number, published.table_name, published.row_count, published.fields, shown,
                 subscription_id, cache.pseudonym_key, by_key, scope)  # fmt: skip


def _scope_of(subscription: ActiveSubscription | None, declared: Sequence[DeclaredField], published: PublishedVersion,
              session: Session) -> tuple[scopes.Term, ...]:  # fmt: skip
    """The granted rows as conditions on the version's columns. A scope that cannot hold serves nothing: on a field
    the version lacks, or one the subscription does not show unmasked (the condition would tell its values)."""
    stored = subscription.scope if subscription is not None else None
    if not stored or subscription is None:
        return ()
    levels = {field.name: field.level for field in declared}
    hidden = sorted(name for name in stored if name not in subscription.fields or name not in levels
                    or subscription.masks(name, levels[name]))  # fmt: skip
    if hidden:
        raise scopes.ScopeUnavailable(f"the subscription's scope limits rows by {', '.join(hidden)}, which it does not "
                                      "show unmasked (now): nothing is served until it is approved again")  # fmt: skip
    types = {field["name"]: DataType(field["data_type"]) for field in published.fields}
    scopes.storable_here(stored, types, session.get_bind().dialect.name, scopes.ScopeUnavailable)
    missing = sorted(name for name in stored if name not in types)
    if missing:
        raise scopes.ScopeUnavailable(f"version {published.number} has no field {', '.join(missing)}, which the "
                                      "subscription's scope limits rows by: nothing can be served from it")  # fmt: skip
    return scopes.terms(stored, types)


def _above_open_data(name: str, level: int) -> bool:
    return level > OPEN_DATA_LEVEL


def _effective(masking: MaskingRule) -> MaskingRule:
    """A field declared with masking none (allowed below level 3) is still hidden when it must be masked."""
    return MaskingRule.REDACT if masking is MaskingRule.NONE else masking


def _pinned_version(session: Session, item_id: int, item_code: str, number: int | None) -> PublishedVersion:
    row = None
    if number is not None:
        row = session.execute(
            select(ItemVersion.number, ItemVersion.table_name, ItemVersion.row_count, ItemVersion.fields).where(
                ItemVersion.item_id == item_id, ItemVersion.number == number
            )
        ).one_or_none()
    if row is None:
        which = "no version yet" if number is None else f"no version {number} (or it is past its retention)"
        raise VersionNotFound(f"item {item_code} has {which}")
    return PublishedVersion(row.number, row.table_name, row.row_count, tuple(row.fields))


def rows_query(
    grant: Grant,
    filters: Mapping[str, str],
    shown: Callable[[ShownField, ColumnElement[Any]], ColumnElement[Any]] | None = None,
    paged: bool = False,
) -> Select[Any]:
    """The grant's rows in order, after the row number bound as ``after`` (and, paged, at most ``limit`` of them);
    ``shown``: how each field's column is selected (as stored by default)."""
    table = version_table(grant)
    row = table.c[ROW_COLUMN]
    columns: list[ColumnElement[Any]] = [row]
    columns += [shown(f, table.c[f.column]) if shown else table.c[f.column] for f in grant.fields]
    statement = select(*columns).where(row > bindparam("after", 0, type_=BigInteger), *scoped(table, grant))
    statement = statement.order_by(row)
    by_name = {field.name: field for field in grant.fields}
    for name, text in sorted(filters.items()):
        field = by_name.get(name)
        if field is None or field.masked:
            raise InvalidFilter(f"{name} is not a field you can filter on: filters apply to fields you see unmasked")
        statement = statement.where(table.c[field.column] == _typed(field, text))
    return statement.limit(bindparam("limit", type_=Integer)) if paged else statement


def version_table(grant: Grant) -> Table:
    return _version_table(grant.table_name, tuple(DataType(field["data_type"]) for field in grant.version_fields))


def scoped(table: Table, grant: Grant) -> list[ColumnElement[bool]]:
    """The conditions of the grant's scope on the version's table (every query of its rows carries them)."""
    columns = {field["name"]: table.c[field["column"]] for field in grant.version_fields}
    conditions: list[ColumnElement[bool]] = []
    for term in grant.scope:
        column = columns[term.field]
        if term.values is not None:  # bound one by one: an expanding IN cannot be compiled ahead (_prepared_json_page)
            conditions.append(column.in_([literal(value, column.type) for value in term.values]))
        if term.start is not None:
            conditions.append(column >= term.start)
        if term.end is not None:
            conditions.append(column <= term.end)
    return conditions


@lru_cache(maxsize=4096)
def _version_table(name: str, data_types: tuple[DataType, ...]) -> Table:
    """Versions never change once published: their table objects are made once (and their statements compiled
    once, through SQLAlchemy's cache)."""
    return positional_table(name, data_types)


def count_rows(connection: Connection, grant: Grant, filters: Mapping[str, str]) -> int:
    if not filters and grant.whole_version:
        return grant.row_count  # recorded when the version was published
    inner = rows_query(grant, filters).order_by(None).subquery()
    return int(connection.scalar(select(func.count()).select_from(inner)) or 0)


@dataclass(frozen=True)
class Page:
    rows: bytes  # a JSON array of the rows, as the grantee sees them
    next_after: int | None  # the ``after`` of the next page; None on the last page
    count: int  # rows in the page


def read_page(
    engine: Engine, grant: Grant, filters: Mapping[str, str], after: int, limit: int, audit_event: dict[str, Any]
) -> Page:
    """Up to ``limit`` rows after row number ``after`` (keyset), and the audit event of the read (its rows the
    page's), committed together on a connection of their own. PostgreSQL masks the rows, writes them as JSON and
    records the event in one statement; other databases' rows are masked through Arrow."""
    limit = max(1, min(limit, MAX_PAGE))
    if engine.dialect.name == "postgresql":
        values = {"after": after, "limit": limit + 1, "shown_limit": limit} | audit.alongside_values(audit_event)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if filters:
                row = tuple(connection.execute(_json_page_query(grant, filters), values).one())
            else:
                row = _prepared_json_page(grant).run(connection, values)
        rows, shown, last, more = row
        return Page(rows.encode(), last if more else None, shown)
    with engine.begin() as connection:
        fetched = connection.execute(rows_query(grant, filters, paged=True), {"after": after, "limit": limit + 1}).all()
        page = json_rows(shown_batch(grant, _batch_of(grant, fetched[:limit])))
        audit.write(connection, audit_event | {"rows": len(page)})
    return Page(pydantic_core.to_json(page), fetched[limit - 1][0] if len(fetched) > limit else None, len(page))


@dataclass(frozen=True)
class _PreparedStatement:
    """A statement compiled once to PostgreSQL's own SQL ($1, $2 ...): run through a raw cursor, it skips both
    SQLAlchemy's per-execution work and psycopg's parsing of the query (which it caches for short queries only)."""

    sql: bytes
    names: tuple[str, ...]  # the parameters, in order
    constants: Mapping[str, Any]

    def run(self, connection: Connection, values: Mapping[str, Any]) -> tuple[Any, ...]:
        values = {**self.constants, **values}
        driver = connection.connection.driver_connection
        with psycopg.RawCursor(driver) as cursor:  # type: ignore[arg-type]
            cursor.execute(self.sql, [values[name] for name in self.names])
            row = cursor.fetchone()
        assert row is not None
        return tuple(row)


_NUMBERED = postgresql_psycopg.dialect(paramstyle="numeric_dollar")


@lru_cache(maxsize=4096)
def _prepared_json_page(grant: Grant) -> _PreparedStatement:
    """Built once per grant: the expressions of the masking rules take longer to build than to run."""
    compiled = _json_page_query(grant, {}).compile(dialect=_NUMBERED, compile_kwargs={"render_postcompile": True})
    return _PreparedStatement(str(compiled).encode(), tuple(compiled.positiontup or ()), dict(compiled.params))


def _json_page_query(grant: Grant, filters: Mapping[str, str]) -> Select[Any]:
    """One row: the page as a JSON array (made by PostgreSQL), how many rows, the last one's number and whether
    there are more; the read's audit event is inserted by the same statement."""
    cells = rows_query(grant, filters, shown=partial(_json_cell_sql, grant=grant), paged=True)
    names = [ROW_COLUMN, *grant.names]
    labelled = cells.with_only_columns(*(c.label(n) for c, n in zip(cells.selected_columns, names, strict=True)))
    page = labelled.cte("page")  # its ``limit`` is one more than is shown: whether there are more
    shown = select(page).order_by(page.c[0]).limit(bindparam("shown_limit", type_=Integer)).cte("shown")
    if max(len(name.encode()) for name in names) <= POSTGRESQL_NAME_BYTES:
        objects: ColumnElement[Any] = shown.table_valued()  # each row as a JSON object, its columns' names as keys
    else:  # longer names would be cut short as column names
        objects = cast(_json_object([(name, shown.c[i]) for i, name in enumerate(names)]), JSON)
    joined = cast(func.json_agg(aggregate_order_by(objects, shown.c[0])), Text)
    body = (
        select(
            func.coalesce(joined, "[]").label("rows"),
            func.count().label("shown"),
            func.max(shown.c[0]).label("last"),
            (select(func.count()).select_from(page).scalar_subquery() > func.count()).label("more"),
        )
        .select_from(shown)
        .cte("body")
    )
    logged = audit.insert_alongside(body.c.shown, body)
    return select(body.c.rows, body.c.shown, body.c.last, body.c.more).add_cte(logged)


def _json_object(cells: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[str]:
    """A JSON object of the cells in order, as text (``json_build_object`` would stop at 50 fields)."""
    text: ColumnElement[str] = literal("{")
    for position, (name, cell) in enumerate(cells):
        key = ("," if position else "") + json.dumps(name, ensure_ascii=False) + ":"
        text = text.concat(literal(key)).concat(func.coalesce(cast(func.to_json(cell), Text), "null"))
    return text.concat(literal("}"))


def stream_batches(connection: Connection, grant: Grant, filters: Mapping[str, str]) -> Iterator[pa.RecordBatch]:
    """Every row as it is shown to the grantee, in Arrow batches: memory stays flat however large the version.
    PostgreSQL sends the rows with COPY, parsed by Arrow; other databases through a server-side cursor."""
    return statement_batches(connection, grant, rows_query(grant, filters))


def statement_batches(connection: Connection, grant: Grant, statement: Select[Any]) -> Iterator[pa.RecordBatch]:
    """The rows of a ``rows_query`` statement (perhaps narrowed further) as the grantee sees them, in batches."""
    if connection.dialect.name == "postgresql":
        batches = _copied_batches(connection, grant, statement)
    else:
        result = connection.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(statement)
        batches = (_batch_of(grant, rows) for rows in result.partitions(STREAM_BATCH))
    for batch in batches:
        yield shown_batch(grant, batch)


def _copied_batches(connection: Connection, grant: Grant, statement: Select[Any]) -> Iterator[pa.RecordBatch]:
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    sql = f"COPY ({compiled}) TO STDOUT (FORMAT csv)"
    names = [ROW_COLUMN, *(field.column for field in grant.fields)]
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(names, _stored_schema(grant).types, strict=True)),
        null_values=[""],  # NULL is an empty cell; an empty text is a quoted one
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    options = (
        pacsv.ReadOptions(column_names=names, block_size=COPY_BLOCK),
        pacsv.ParseOptions(newlines_in_values=True),
        convert,
    )
    for block in prefetched(_copy_blocks(connection, sql, compiled.params, COPY_BLOCK), "copy-read"):
        yield from _parsed(block, options)


def _copy_blocks(connection: Connection, sql: str, params: Mapping[str, Any], size: int) -> Iterator[bytes]:
    """COPY's output in blocks of whole rows (it sends one row at a time), so each block is a CSV document."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(sql, params) as copy:
        rows: list[bytes] = []
        gathered = 0
        for row in copy:
            rows.append(bytes(row))
            gathered += len(row)
            if gathered >= size:
                yield b"".join(rows)
                rows, gathered = [], 0
        if rows:
            yield b"".join(rows)


def _parsed(block: bytes, options: tuple[Any, Any, Any]) -> Iterator[pa.RecordBatch]:
    read, parse, convert = options
    yield from pacsv.read_csv(pa.py_buffer(block), read, parse, convert).to_batches()


def _stored_schema(grant: Grant) -> pa.Schema:
    """The shown fields' columns as the database holds them (decimals as their exact text)."""
    types = [ARROW_TYPES.get(field.data_type, pa.string()) for field in grant.fields]
    return pa.schema(
        [(ROW_COLUMN, pa.int64())] + [(f.column, kind) for f, kind in zip(grant.fields, types, strict=True)]
    )


def output_schema(grant: Grant) -> pa.Schema:
    """What the grantee gets: masked fields are text."""
    stored = _stored_schema(grant)
    return pa.schema(
        [(ROW_COLUMN, pa.int64())]
        + [(f.name, pa.string() if f.masked else kind) for f, kind in zip(grant.fields, stored.types[1:], strict=True)]
    )


def _batch_of(grant: Grant, rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    schema = _stored_schema(grant)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [
        pa.array([None if value is None else str(value) for value in column] if kind == pa.string() else column, kind)
        for column, kind in zip(columns, schema.types, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def shown_batch(grant: Grant, batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of stored columns as the grantee sees it: masked fields masked by their rule, named by name."""
    arrays = [batch.column(0)]
    for field, column in zip(grant.fields, batch.columns[1:], strict=True):
        arrays.append(mask_column(field.masking, _as_text(column), grant.pseudonym_key) if field.masked else column)
    return pa.RecordBatch.from_arrays(arrays, schema=output_schema(grant))


def _as_text(column: pa.Array) -> pa.Array:
    """A value as text, as JSON shows it (masking works on the text)."""
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column.cast(pa.timestamp("s")), "%Y-%m-%dT%H:%M:%S")
    return column.cast(pa.string())


def json_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    columns = []
    for column in batch.columns:
        values = column.to_pylist()
        if pa.types.is_temporal(column.type):
            values = [None if value is None else value.isoformat() for value in values]
        columns.append(values)
    names = batch.schema.names
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def csv_download(connection: Connection, grant: Grant, filters: Mapping[str, str]) -> Iterator[bytes]:
    """Every row as the grantee sees it, as CSV. PostgreSQL masks and writes the rows itself (COPY, with the
    rules as SQL expressions), in its own process; other databases go through Arrow."""
    if connection.dialect.name != "postgresql":
        yield from csv_chunks(grant, stream_batches(connection, grant, filters))
        return
    yield _csv_header(grant)
    statement = rows_query(grant, filters, shown=lambda field, column: _csv_cell_sql(field, column, grant))
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    sql = f"COPY ({compiled}) TO STDOUT (FORMAT csv)"
    yield from _copy_blocks(connection, sql, compiled.params, CSV_CHUNK)


def _csv_header(grant: Grant) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([ROW_COLUMN, *grant.names])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # a BOM: spreadsheet programs then read UTF-8 right


def _shown_sql(field: ShownField, column: ColumnElement[Any], grant: Grant) -> ColumnElement[Any]:
    """A field's column as the grantee sees it, masked by PostgreSQL (as ``shown_batch`` masks it)."""
    if field.masked:
        return mask_sql(field.masking, _text_sql(column, field.data_type), grant.pseudonym_key)
    return column


def _json_cell_sql(field: ShownField, column: ColumnElement[Any], grant: Grant) -> ColumnElement[Any]:
    """A field's column as JSON shows it: masked, or decimals as their exact text and dates and times in ISO 8601
    (made by PostgreSQL: converting them in Python cost more than the rest of a page)."""
    if field.masked or field.data_type not in (DataType.DECIMAL, DataType.DATE, DataType.DATETIME):
        return _shown_sql(field, column, grant)
    if field.data_type is DataType.DATETIME:  # as Python's isoformat: microseconds only when there are some
        return func.replace(func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS.US'), ".000000", "")
    return cast(column, Text)


def _csv_cell_sql(field: ShownField, column: ColumnElement[Any], grant: Grant) -> ColumnElement[Any]:
    if field.masked or field.data_type is DataType.STRING:
        return _formula_safe_sql(_shown_sql(field, column, grant))
    if field.data_type is DataType.BOOLEAN:
        return _text_sql(column, field.data_type)
    return column


def _text_sql(column: ColumnElement[Any], data_type: DataType) -> ColumnElement[str]:
    """A stored value as text, as ``_as_text`` makes it (masking works on the text)."""
    if data_type is DataType.DATETIME:
        return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS')
    if data_type is DataType.BOOLEAN:
        return case((column.is_(True), "true"), (column.is_(False), "false"))
    return cast(column, Text)


def _formula_safe_sql(text: ColumnElement[str]) -> ColumnElement[str]:
    first = func.ascii(text)  # the first character's code point: cheaper than taking the character
    return case((first.in_([ord(start) for start in FORMULA_STARTS]), literal("'").concat(text)), else_=text)


def csv_chunks(grant: Grant, batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    schema = output_schema(grant)
    guarded = [
        position for position, field in enumerate(grant.fields, 1) if field.masked or field.data_type is DataType.STRING
    ]
    sink = _DrainableSink()
    sink.write(_csv_header(grant))
    with pacsv.CSVWriter(sink, schema, write_options=pacsv.WriteOptions(include_header=False)) as writer:
        yield sink.drain()
        for batch in batches:
            columns = list(batch.columns)
            for position in guarded:
                columns[position] = _formula_safe(columns[position])
            writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
            yield sink.drain()
    yield sink.drain()


def _formula_safe(column: pa.Array) -> pa.Array:
    """A text cell a spreadsheet would run as a formula gets a leading quote."""
    risky = pc.fill_null(pc.is_in(pc.utf8_slice_codeunits(column, 0, 1), pa.array(FORMULA_STARTS)), False)
    if not pc.any(risky).as_py():
        return column
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def jsonl_chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    for batch in batches:
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in json_rows(batch)).encode("utf-8")


def parquet_chunks(grant: Grant, batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    sink = _DrainableSink()
    with pq.ParquetWriter(sink, output_schema(grant)) as writer:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.drain()
    yield sink.drain()


class _DrainableSink(io.RawIOBase):
    """A write-only file whose bytes are taken away as they come: a file streamed part by part."""

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


def _typed(field: ShownField, text: str) -> Any:
    try:
        return field.data_type.parse(text)
    except ValueError:
        # The value itself is never repeated: problem bodies end up in proxies' and clients' logs.
        raise InvalidFilter(f"{field.name}: the value given is not a {field.data_type.value}") from None
