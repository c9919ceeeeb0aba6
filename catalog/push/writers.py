"""Writing one version to one target, as the subscription's grant shows it (the approved fields, masked and scoped as
reads are): a signed webhook notice, a table in the consumer's PostgreSQL database, a file under an fsspec URL (a
local folder, or object storage such as s3://).

Nothing half-written becomes visible: a database target is written in one transaction (readers see the old rows
until it commits), a local file under a temporary name then moved into place, an object by an upload that shows it
only once complete. What fails is said in words fit for ops:
never a connection string, a secret or a value.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from catalog import storage
from catalog.classification.types import DataType
from catalog.delivery.service import Grant, ShownField, csv_chunks, parquet_chunks
from catalog.errors import DomainError
from catalog.notifications import senders
from catalog.settings import Settings

PG_TYPES = {
    DataType.INTEGER: "bigint",
    DataType.DECIMAL: "numeric",
    DataType.DATE: "date",
    DataType.DATETIME: "timestamp without time zone",
    DataType.BOOLEAN: "boolean",
    DataType.STRING: "text",
}
LEDGER = "_datashare_deliveries"  # in the consumer's schema: which version each table holds


class TargetFailed(DomainError):
    code = "delivery_target_failed"


@dataclass(frozen=True)
class Change:
    """What a database target receives: the rows to write and, by changed keys, the keys whose rows are gone."""

    batches: Iterable[pa.RecordBatch]  # as shown, the row number first (left out of tables)
    gone_keys: Sequence[tuple[Any, ...]] | None  # None: the whole version replaces the table
    key: Sequence[str] = ()


def secret_of(variable: str | None) -> str:
    value = os.environ.get(variable or "", "")
    if not value:
        raise TargetFailed(f"the environment variable {variable} is not set where deliveries run")
    return value


def send_webhook(settings: Settings, url: str, variable: str | None, notice: dict[str, Any], delivery_id: int) -> None:
    body = json.dumps(notice, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    senders.send_webhook(settings, url, secret_of(variable), body, delivery_id)


def write_file(folder: str, name: str, grant: Grant, batches: Iterable[pa.RecordBatch], file_format: str) -> str:
    """``<folder>/<name>.<format>``; its URL. A local file is written under a temporary (hidden) name and moved into
    place; an object (s3://) is uploaded under its final name and appears only once complete (catalog/storage.py),
    with the credentials of the environment or the task's Airflow connection."""
    filesystem, root = storage.filesystem(folder)
    final = f"{root.rstrip('/')}/{name}.{file_format}"
    rows = iter(batches)
    chunks = csv_chunks(grant, rows) if file_format == "csv" else parquet_chunks(grant, rows)
    if not storage.is_local(filesystem):
        storage.write_whole(filesystem, final, chunks)
        return f"{folder.rstrip('/')}/{name}.{file_format}"
    filesystem.makedirs(root, exist_ok=True)
    partial = f"{root.rstrip('/')}/.{name}.{uuid.uuid4().hex}.partial"
    try:
        with filesystem.open(partial, "wb") as sink:
            for chunk in chunks:
                sink.write(chunk)
        filesystem.mv(partial, final)
    finally:
        if filesystem.exists(partial):
            filesystem.rm(partial)
    return f"{folder.rstrip('/')}/{name}.{file_format}"


def write_table(dsn: str, schema: str, table: str, grant: Grant, change: Change, seconds: float) -> tuple[int, str]:
    """The version into ``schema.table`` of the consumer's database, in one transaction: by changed keys when the
    change has gone keys and the table is as the grant shows it, else the whole version. Rows written and how."""
    columns = [(field.name, column_type(field)) for field in grant.fields]
    try:
        with psycopg.connect(dsn, connect_timeout=10, options=f"-c statement_timeout={int(seconds * 1000)}") as db:
            db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            same = _columns_of(db, schema, table) == columns
            if change.gone_keys is not None and same:
                rows, mode = _write_changes(db, schema, table, columns, change), "changed"
            else:
                rows, mode = _replace(db, schema, table, columns, change.batches, same), "full"
            _ledger(db, schema, table, grant, rows, mode)
    except psycopg.Error as error:  # its message may quote values or the server's address: the kind only
        state = getattr(error, "sqlstate", None) or "no SQLSTATE"
        raise TargetFailed(f"the consumer's database refused the delivery ({type(error).__name__}, {state})") from None
    return rows, mode


def column_type(field: ShownField) -> str:
    return "text" if field.masked else PG_TYPES[field.data_type]


def _columns_of(db: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = "
        "a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND "
        "a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _replace(db: psycopg.Connection[Any], schema: str, table: str, columns: list[tuple[str, str]],
             batches: Iterable[pa.RecordBatch], same: bool) -> int:  # fmt: skip
    """The whole version: into the table itself when its columns are the same (emptied first, so views on it stay),
    else into a new table that takes its place. Readers see the old rows until the commit."""
    target = sql.Identifier(schema, table)
    if same:
        db.execute(sql.SQL("TRUNCATE {}").format(target))
        return _copy(db, target, batches)
    incoming = sql.Identifier(schema, f"{table}__incoming")
    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(incoming))
    db.execute(sql.SQL("CREATE TABLE {} ({})").format(incoming, _definition(columns)))
    rows = _copy(db, incoming, batches)
    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
    db.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(incoming, sql.Identifier(table)))
    return rows


def _write_changes(db: psycopg.Connection[Any], schema: str, table: str, columns: list[tuple[str, str]],
                   change: Change) -> int:  # fmt: skip
    """Rows whose key is new or changed replace those with the key; rows whose key is gone are deleted."""
    target = sql.Identifier(schema, table)
    key_types = [(name, kind) for name, kind in columns if name in change.key]
    db.execute(sql.SQL("CREATE TEMP TABLE _ds_changed ({}) ON COMMIT DROP").format(_definition(columns)))
    db.execute(sql.SQL("CREATE TEMP TABLE _ds_gone ({}) ON COMMIT DROP").format(_definition(key_types)))
    rows = _copy(db, sql.Identifier("_ds_changed"), change.batches)
    with db.cursor().copy(sql.SQL("COPY _ds_gone FROM STDIN")) as copy:
        for key in change.gone_keys or ():
            copy.write_row(key)
    key_columns = sql.SQL(", ").join(sql.Identifier(name) for name, _ in key_types)
    for source in ("_ds_changed", "_ds_gone"):
        statement = sql.SQL("DELETE FROM {t} WHERE ({k}) IN (SELECT {k} FROM {s})")
        db.execute(statement.format(t=target, k=key_columns, s=sql.Identifier(source)))
    db.execute(sql.SQL("INSERT INTO {} SELECT * FROM _ds_changed").format(target))
    return rows


def _definition(columns: Sequence[tuple[str, str]]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns)


def _copy(db: psycopg.Connection[Any], table: sql.Identifier, batches: Iterable[pa.RecordBatch]) -> int:
    """The batches' rows (without the row number) into the table, as CSV: an empty cell is NULL, "" an empty text."""
    rows = 0
    with db.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(table)) as copy:
        for batch in batches:
            if batch.num_rows:
                buffer = io.BytesIO()
                pacsv.write_csv(batch.drop_columns([batch.schema.names[0]]), buffer,
                                pacsv.WriteOptions(include_header=False))  # fmt: skip
                copy.write(buffer.getvalue())
                rows += batch.num_rows
    return rows


def _ledger(db: psycopg.Connection[Any], schema: str, table: str, grant: Grant, rows: int, mode: str) -> None:
    ledger = sql.Identifier(schema, LEDGER)
    db.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (table_name text, item text, version integer, rows bigint, "
                       "mode text, delivered_at timestamptz DEFAULT now(), PRIMARY KEY (table_name, version))"
                       ).format(ledger))  # fmt: skip
    db.execute(sql.SQL("INSERT INTO {} (table_name, item, version, rows, mode) VALUES (%s, %s, %s, %s, %s) ON CONFLICT "
                       "(table_name, version) DO UPDATE SET rows = excluded.rows, mode = excluded.mode, delivered_at = "
                       "now()").format(ledger), (table, grant.item, grant.version, rows, mode))  # fmt: skip
