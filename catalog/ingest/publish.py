"""Publishing a conformed batch as a new immutable version of an item, in the caller's transaction.

Each version is its own table ``item_<item id>_v<number>`` with one column per field, named by position
(``f1``, ``f2`` …) so that any field name, however long or Chinese, is safe; the version row records which
field each column holds. Chunks are written as they are conformed (PostgreSQL: binary COPY encoded from Arrow;
SQLite: executemany), so a batch is never held in memory whole. The staged table, its rows, the version row
and the move of the item's current-version pointer commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    MetaData,
    Numeric,
    Table,
    Text,
    TypeDecorator,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from catalog.access.changes import ITEM, note_change
from catalog.classification.types import DataType
from catalog.db import utcnow
from catalog.ingest.conform import ConformedChunk
from catalog.ingest.copy_binary import copy_parts
from catalog.ingest.models import IngestBatch, ItemVersion
from catalog.items.models import CatalogItem
from catalog.items.schemas import FieldDeclaration

DEFAULT_RETENTION_DAYS = 90
ROW_COLUMN = "_row"  # the row's number in the export, for tracing a value back to its source line
# A generation's rows are part of the versions from FROM_COLUMN up to (not including) UNTIL_COLUMN, OPEN while current.
FROM_COLUMN, UNTIL_COLUMN = "_from", "_to"
OPEN = 2_147_483_647
DELETE_BATCH = 1000


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; text on SQLite, whose NUMERIC is a binary float that would round decimals."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else Numeric())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else str(value) if dialect.name == "sqlite" else Decimal(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return value if value is None or isinstance(value, Decimal) else Decimal(str(value))


COLUMN_TYPES: dict[DataType, TypeEngine[Any]] = {
    DataType.STRING: Text(),
    DataType.INTEGER: BigInteger(),
    DataType.DECIMAL: ExactDecimal(),
    DataType.DATE: Date(),
    DataType.DATETIME: DateTime(),
    DataType.BOOLEAN: Boolean(),
}


def version_table(item_id: int, number: int, data_types: Sequence[DataType], keyed: bool = True) -> Table:
    """A version's table; on PostgreSQL unkeyed while it is loaded (the key is added in one sort at the end)."""
    return positional_table(f"item_{item_id}_v{number}", data_types, keyed)


def positional_table(name: str, data_types: Sequence[DataType], keyed: bool = True) -> Table:
    columns = [Column(ROW_COLUMN, BigInteger, primary_key=keyed, autoincrement=False, nullable=False)]
    columns += [Column(f"f{position}", COLUMN_TYPES[data_type]) for position, data_type in enumerate(data_types, 1)]
    return Table(name, MetaData(), *columns)


class VersionWriter:
    """Stages an item's next version chunk by chunk; ``finish`` makes it the current version."""

    def __init__(self, session: Session, item_id: int, fields: Sequence[FieldDeclaration]) -> None:
        self._session, self._item_id, self._fields = session, item_id, list(fields)
        latest = session.scalar(select(func.max(ItemVersion.number)).where(ItemVersion.item_id == item_id))
        self._number = (latest or 0) + 1
        self._connection = session.connection()
        self._decimals = {f"f{position}" for position, field in enumerate(self._fields, 1)
                          if field.data_type is DataType.DECIMAL}  # fmt: skip
        self._postgres = self._connection.dialect.name == "postgresql"
        self.table = self._staging_table([field.data_type for field in fields])
        self.table.create(self._connection)
        self.row_count = 0  # rows written (less those deleted again)
        self._indexed = False

    def _staging_table(self, data_types: Sequence[DataType]) -> Table:
        return version_table(self._item_id, self._number, data_types, keyed=not self._postgres)

    def write(self, chunk: ConformedChunk, leave_out: set[int] | None = None) -> None:
        table = self._positional(chunk)
        if leave_out:
            keep = pc.invert(pc.is_in(table.column(ROW_COLUMN), value_set=pa.array(sorted(leave_out), pa.int64())))
            table = table.filter(keep)
        if self._postgres:
            self._copy(table)
        else:
            self._insert(table)
        self.row_count += table.num_rows

    def delete_rows(self, rows: Iterable[int]) -> None:
        ordered = sorted(rows)
        for start in range(0, len(ordered), DELETE_BATCH):
            part = ordered[start : start + DELETE_BATCH]
            result = self._connection.execute(delete(self.table).where(self.table.c[ROW_COLUMN].in_(part)))
            self.row_count -= result.rowcount

    def index(self) -> None:
        """The version's primary key and key index, built once the rows are loaded (one build is cheaper than growing
        them row by row); the caller may judge the batch meanwhile, the database building them."""
        if self._indexed:
            return
        if self._postgres:
            self._connection.exec_driver_sql(f'ALTER TABLE "{self.table.name}" ADD PRIMARY KEY ("{ROW_COLUMN}")')
        keys = [f'"f{position}"' for position, field in enumerate(self._fields, 1) if field.key]
        if keys:  # look-ups by key (verification, filters) read this index, not the whole version
            self._connection.exec_driver_sql(
                f'CREATE INDEX "{self.table.name}_key" ON "{self.table.name}" ({", ".join(keys)})'
            )
        self._indexed = True

    def finish(self) -> ItemVersion:
        self.index()
        return record_version(self._session, self._item_id, self._number, self.table.name, self.row_count, self._fields)

    def _positional(self, chunk: ConformedChunk) -> pa.Table:
        names = [ROW_COLUMN, *(f"f{position}" for position in range(1, len(self._fields) + 1))]
        return pa.Table.from_arrays([pa.array(chunk.row_numbers), *chunk.table.columns], names=names)

    def _copy(self, table: pa.Table) -> None:
        """COPY in PostgreSQL's binary format, encoded from the Arrow columns (catalog/ingest/copy_binary.py)."""
        names = ", ".join(f'"{name}"' for name in table.column_names)
        driver = self._connection.connection.driver_connection
        assert driver is not None  # a live psycopg connection, inside this transaction
        cursor = driver.cursor()
        with cursor, cursor.copy(f'COPY "{self.table.name}" ({names}) FROM STDIN WITH (FORMAT binary)') as copy:
            for part in copy_parts(table, self._decimals):
                copy.write(part)

    def _insert(self, table: pa.Table) -> None:
        """SQLite: values in the layout SQLAlchemy's SQLite types store and read back."""
        columns = [_sqlite_values(column) for column in table.columns]
        marks = ", ".join("?" * len(columns))
        self._connection.exec_driver_sql(
            f'INSERT INTO "{self.table.name}" VALUES ({marks})', list(zip(*columns, strict=True))
        )


def record_version(
    session: Session,
    item_id: int,
    number: int,
    table_name: str,
    row_count: int,
    fields: Sequence[FieldDeclaration],
    generation: str | None = None,
) -> ItemVersion:
    """The version's row, and the item's current-version pointer moved to it."""
    version = ItemVersion(
        item_id=item_id,
        number=number,
        table_name=table_name,
        generation=generation,
        row_count=row_count,
        fields=[
            {"column": f"f{position}", **field.model_dump(mode="json", include={"name", "data_type", "level"})}
            for position, field in enumerate(fields, 1)
        ],
    )
    session.add(version)
    session.flush()
    session.execute(update(CatalogItem).where(CatalogItem.id == item_id).values(current_version_id=version.id))
    note_change(session, ITEM, item_id)
    return version


def _sqlite_values(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, "%Y-%m-%d %H:%M:%S").to_pylist()  # microseconds included, as SQLAlchemy does
    if pa.types.is_date(column.type):
        return pc.strftime(column, "%Y-%m-%d").to_pylist()
    if pa.types.is_boolean(column.type):
        return pc.cast(column, pa.int8()).to_pylist()
    return column.to_pylist()


def prune_versions(session: Session, item_id: int, retention_days: int) -> list[int]:
    """Drop versions published more than retention_days ago, never the current one; returns their numbers."""
    cutoff = utcnow() - timedelta(days=retention_days)
    current = session.scalar(select(CatalogItem.current_version_id).where(CatalogItem.id == item_id))
    old = session.scalars(
        select(ItemVersion).where(
            ItemVersion.item_id == item_id, ItemVersion.published_at < cutoff, ItemVersion.id != current
        )
    ).all()
    connection = session.connection()
    for version in old:
        session.execute(update(IngestBatch).where(IngestBatch.version_id == version.id).values(version_id=None))
        kind = "TABLE" if version.generation is None else "VIEW"
        connection.exec_driver_sql(f'DROP {kind} IF EXISTS "{version.table_name}"')
        session.delete(version)
    session.flush()
    for generation in sorted({version.generation for version in old if version.generation is not None}):
        _tidy_generation(session, item_id, generation)
    return [version.number for version in old]


def _tidy_generation(session: Session, item_id: int, generation: str) -> None:
    """A generation's rows that no version left can see go (its first one sees all others can); the table goes with
    its last version."""
    first = session.scalar(
        select(func.min(ItemVersion.number)).where(ItemVersion.item_id == item_id, ItemVersion.generation == generation)
    )
    connection = session.connection()
    if first is None:
        connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{generation}"')
        return
    # The bounds are written out: PostgreSQL then reads the index of the closed rows (WHERE "_to" < OPEN).
    connection.exec_driver_sql(
        f'DELETE FROM "{generation}" WHERE "{UNTIL_COLUMN}" <= {int(first)} AND "{UNTIL_COLUMN}" < {OPEN}'
    )


def read_version(session: Session, version: ItemVersion) -> pd.DataFrame:
    """A published version's rows with the declared field names (for tests and small reads)."""
    table = version_table(version.item_id, version.number, [DataType(field["data_type"]) for field in version.fields])
    frame = pd.DataFrame(
        session.connection().execute(select(table).order_by(table.c[ROW_COLUMN])).all(), columns=table.c.keys()
    )
    renamed = {field["column"]: field["name"] for field in version.fields}
    return frame.set_index(ROW_COLUMN).rename(columns=renamed)
