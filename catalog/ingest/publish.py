"""Publishing a conformed batch as a new immutable version of an item, in the caller's transaction.

Each version is its own table ``item_<item id>_v<number>`` with one column per field, named by position
(``f1``, ``f2`` …) so that any field name, however long or Chinese, is safe; the version row records which
field each column holds. The staged table, its rows, the version row and the move of the item's
current-version pointer commit together or not at all. PostgreSQL loads use COPY.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from catalog.classification.types import DataType
from catalog.db import utcnow
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.items.models import CatalogItem
from catalog.items.schemas import FieldDeclaration

DEFAULT_RETENTION_DAYS = 90
ROW_COLUMN = "_row"  # the row's number in the export, for tracing a value back to its source line
CHUNK_ROWS = 10_000
COLUMN_TYPES: dict[DataType, TypeEngine[Any]] = {
    DataType.STRING: Text(),
    DataType.INTEGER: BigInteger(),
    DataType.DECIMAL: Numeric(),
    DataType.DATE: Date(),
    DataType.DATETIME: DateTime(),
    DataType.BOOLEAN: Boolean(),
}


def version_table(item_id: int, number: int, fields: Sequence[FieldDeclaration]) -> Table:
    columns = [Column(ROW_COLUMN, BigInteger, primary_key=True, autoincrement=False)]
    columns += [Column(f"f{position}", COLUMN_TYPES[field.data_type]) for position, field in enumerate(fields, 1)]
    return Table(f"item_{item_id}_v{number}", MetaData(), *columns)


def publish_version(
    session: Session, item_id: int, fields: Sequence[FieldDeclaration], frame: pd.DataFrame
) -> ItemVersion:
    """Stage the rows in a new version table and make it the item's current version."""
    number = (session.scalar(select(func.max(ItemVersion.number)).where(ItemVersion.item_id == item_id)) or 0) + 1
    table = version_table(item_id, number, fields)
    connection = session.connection()
    table.create(connection)
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, table, frame)
    else:
        for chunk in _row_dicts(table, frame):
            connection.execute(insert(table), chunk)
    version = ItemVersion(
        item_id=item_id,
        number=number,
        table_name=table.name,
        row_count=len(frame),
        fields=[
            {"column": f"f{position}", **field.model_dump(mode="json", include={"name", "data_type", "level"})}
            for position, field in enumerate(fields, 1)
        ],
    )
    session.add(version)
    session.flush()
    session.execute(update(CatalogItem).where(CatalogItem.id == item_id).values(current_version_id=version.id))
    return version


def prune_versions(session: Session, item_id: int, retention_days: int) -> list[int]:
    """Drop versions published more than retention_days ago, never the current one; returns their numbers."""
    cutoff = utcnow() - timedelta(days=retention_days)
    current = session.scalar(select(CatalogItem.current_version_id).where(CatalogItem.id == item_id))
    old = session.scalars(
        select(ItemVersion).where(
            ItemVersion.item_id == item_id, ItemVersion.published_at < cutoff, ItemVersion.id != current
        )
    ).all()
    for version in old:
        session.execute(update(IngestBatch).where(IngestBatch.version_id == version.id).values(version_id=None))
        Table(version.table_name, MetaData()).drop(session.connection(), checkfirst=True)
        session.delete(version)
    session.flush()
    return [version.number for version in old]


def _records(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples of plain Python values (None for every kind of missing value)."""
    columns = [frame[name].astype(object).where(frame[name].notna(), None) for name in frame.columns]
    for row_number, *values in zip(frame.index, *columns, strict=True):
        yield (int(row_number), *(_plain(value) for value in values))


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _row_dicts(table: Table, frame: pd.DataFrame) -> Iterator[list[dict[str, Any]]]:
    names = [column.name for column in table.columns]
    chunk: list[dict[str, Any]] = []
    for record in _records(frame):
        chunk.append(dict(zip(names, record, strict=True)))
        if len(chunk) == CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy_rows(connection: Any, table: Table, frame: pd.DataFrame) -> None:
    names = ", ".join(f'"{column.name}"' for column in table.columns)
    with (
        connection.connection.driver_connection.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
    ):
        for record in _records(frame):
            copy.write_row(record)


def read_version(session: Session, version: ItemVersion) -> pd.DataFrame:
    """A published version's rows with the declared field names (for tests and small reads)."""
    table = Table(version.table_name, MetaData(), autoload_with=session.connection())
    frame = pd.read_sql(select(table).order_by(table.c[ROW_COLUMN]), session.connection())
    renamed = {field["column"]: field["name"] for field in version.fields}
    return frame.set_index(ROW_COLUMN).rename(columns=renamed)
