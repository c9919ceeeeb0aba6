"""Incremental publication: an export of changed and deleted keys merged into the next version, without rewriting
the rows it leaves as they were.

An item's rows may live in a *generation* table ``item_<id>_g<n>`` (n: the version that started it): a version
table's columns (``_row``, ``f1`` …) and two more, ``_from`` and ``_to``, the versions from which and until which (not
included) a row is part of the item; ``_to`` is OPEN while the row is current. Each version of a generation is a
view ``item_<id>_v<n>`` of the rows valid at n, with exactly a version table's columns, so every read (pages,
downloads, COPY, look-ups, deliveries) reads it by its table name as before, through the generation's indexes
(``_row``, the key), and it never changes once published.

A full export publishes a table of its own, as always. The first incremental export after it turns that table into
a generation in place: renamed, with the two columns added with constant defaults (no row is rewritten), and a view
under its old name. An incremental export at version N then closes the current rows of its keys (``_to = N``, through
the key index), adds its inserted and updated rows with ``_from = N`` and new row numbers above the generation's
highest (the row's line in the export plus that base), and makes version N's view; all in the publishing transaction,
so nothing of it is seen before it commits, and a quarantine (a savepoint rolled back) leaves no trace. Pruning drops
the views, the rows no version left can see, and a generation with its last version (``publish.prune_versions``).

The conversion locks the version's table (PostgreSQL: ACCESS EXCLUSIVE, until the publishing transaction ends). It
waits ``CONVERSION_LOCK_TIMEOUT`` at most for the reads of that version going on (a long download or delivery), never
queueing every new read of the item behind them for as long: past it, ``VersionBusy``, a retryable failure of the run.
Of the staged rows of one key, only the last in the export's order is applied (a change log's meaning); the normal
path quarantines such an export (the unique key rule), so this matters to an operator's release of one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from catalog.classification.types import DataType
from catalog.ingest.conform import ConformedChunk
from catalog.ingest.errors import DeltaNotApplicable
from catalog.ingest.models import ItemVersion
from catalog.ingest.publish import (
    COLUMN_TYPES,
    FROM_COLUMN,
    OPEN,
    ROW_COLUMN,
    UNTIL_COLUMN,
    VersionWriter,
    record_version,
)
from catalog.items.models import CatalogItem
from catalog.items.schemas import FieldDeclaration

DELETE_COLUMN = "_delete"  # a staged row of an incremental export deletes its key
# PostgreSQL: how long the first delta waits for the reads of the current version to lock its table (a lock_timeout).
CONVERSION_LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE of a lock not granted within lock_timeout


class VersionBusy(Exception):
    """The current version's table is being read (a download, a delivery) and could not be locked in time to turn it
    into a generation. Not the export's fault: the run fails (nothing published, the batch not quarantined) and is
    retried. Not a domain error, so that the ingestion task is retried rather than refused."""


@dataclass(frozen=True)
class Changes:
    """What an incremental export did to the version it was applied to (for the batch's record and audit row)."""

    based_on: int  # the version it was applied to
    inserted: int  # rows of keys the version did not have
    updated: int  # rows that replaced the version's row of their key
    deleted: int  # keys deleted
    deletes_absent: int  # deletions of keys the version did not have (nothing to do)
    carried_over: int  # rows of the version kept as they were
    first_row: int  # the new rows' row numbers are this plus their line in the export

    def as_dict(self) -> dict[str, Any]:
        return {"mode": "incremental", **asdict(self)}


class DeltaWriter(VersionWriter):
    """Stages an incremental export's rows (a temporary table); ``finish`` merges them into the current version's
    generation as the next version and makes it the current one."""

    def __init__(self, session: Session, item_id: int, fields: Sequence[FieldDeclaration]) -> None:
        self._current = _current_version(session, item_id)
        _require_same_fields(self._current, fields)
        self.changes: Changes | None = None
        self.superseded = 0  # staged rows not applied: a later row of the export has their key
        super().__init__(session, item_id, fields)

    def _staging_table(self, data_types: Sequence[DataType]) -> Table:
        columns: list[Column[Any]] = [Column(ROW_COLUMN, BigInteger, nullable=False)]
        columns += [Column(DELETE_COLUMN, Boolean, nullable=False)]
        columns += [Column(f"f{position}", COLUMN_TYPES[kind]) for position, kind in enumerate(data_types, 1)]
        options: dict[str, Any] = {"postgresql_on_commit": "DROP"} if self._postgres else {}
        name = f"item_{self._item_id}_d{self._number}"
        return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], **options)

    def _positional(self, chunk: ConformedChunk) -> pa.Table:
        table = super()._positional(chunk)
        deletes = chunk.deletes if chunk.deletes is not None else np.zeros(chunk.size, dtype=bool)
        return table.add_column(1, DELETE_COLUMN, pa.array(deletes, pa.bool_()))

    def finish(self) -> ItemVersion:
        self.superseded = self._supersede()
        generation = self._generation()
        if self._postgres:  # the plan of the merge joins on the staged keys: its statistics must be known
            self._connection.exec_driver_sql(f'ANALYZE "{self.table.name}"')
        deleted, updated = self._close(generation, deletes=True), self._close(generation, deletes=False)
        base = int(self._connection.scalar(select(func.coalesce(func.max(generation.c[ROW_COLUMN]), 0))) or 0)
        added = self._add(generation, base)
        staged_deletes = self.row_count - self.superseded - added
        rows = self._current.row_count - deleted - updated + added
        name = f"item_{self._item_id}_v{self._number}"
        self._connection.exec_driver_sql(_view_sql(name, generation.name, self._number, len(self._fields)))
        self._connection.exec_driver_sql(f'DROP TABLE "{self.table.name}"')
        self.changes = Changes(self._current.number, added - updated, updated, deleted, staged_deletes - deleted,
                               self._current.row_count - deleted - updated, base)  # fmt: skip
        return record_version(self._session, self._item_id, self._number, name, rows, self._fields, generation.name)

    def _generation(self) -> Table:
        """The current version's generation; a version with a table of its own becomes one first."""
        current = self._current
        if current.generation is None:
            current.generation = _converted(self._connection, current, len(self._fields))
            self._session.flush()
        return generation_table(current.generation, [field.data_type for field in self._fields])

    def _supersede(self) -> int:
        """Of the staged rows of one key, keep the last in the export's order (the key's state after the export's
        changes), so that no key is closed and added in one version, or added twice; returns how many went. Rows with
        a null key field match no stored row and none of each other: all are kept."""
        keys = [self.table.c[f"f{position}"] for position, field in enumerate(self._fields, 1) if field.key]
        row = self.table.c[ROW_COLUMN]
        rank = func.row_number().over(partition_by=keys, order_by=row.desc())
        ranked = select(row.label("row"), rank.label("rank")).where(*(key.is_not(None) for key in keys)).subquery()
        earlier = select(ranked.c.row).where(ranked.c.rank > 1)
        return int(self._connection.execute(delete(self.table).where(row.in_(earlier))).rowcount)

    def _close(self, generation: Table, deletes: bool) -> int:
        """Close the current rows of the staged keys (deleted, or replaced); returns how many."""
        keys = [f"f{position}" for position, field in enumerate(self._fields, 1) if field.key]
        staged = select(*(self.table.c[key] for key in keys)).where(self.table.c[DELETE_COLUMN].is_(deletes))
        stored = generation.c[keys[0]] if len(keys) == 1 else tuple_(*(generation.c[key] for key in keys))
        statement = (
            generation.update()
            .where(generation.c[UNTIL_COLUMN] == OPEN, stored.in_(staged))
            .values({UNTIL_COLUMN: self._number})
        )
        return int(self._connection.execute(statement).rowcount)

    def _add(self, generation: Table, base: int) -> int:
        """The staged rows that insert or update their key, as the generation's rows from this version on."""
        columns = [f"f{position}" for position in range(1, len(self._fields) + 1)]
        rows = select(
            self.table.c[ROW_COLUMN] + base,
            literal(self._number, Integer),
            literal(OPEN, Integer),
            *(self.table.c[column] for column in columns),
        ).where(self.table.c[DELETE_COLUMN].is_(False))
        statement = insert(generation).from_select([ROW_COLUMN, FROM_COLUMN, UNTIL_COLUMN, *columns], rows)
        return int(self._connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def generation_table(name: str, data_types: Sequence[DataType]) -> Table:
    columns: list[Column[Any]] = [Column(ROW_COLUMN, BigInteger, primary_key=True, autoincrement=False, nullable=False)]
    columns += [Column(FROM_COLUMN, Integer, nullable=False), Column(UNTIL_COLUMN, Integer, nullable=False)]
    columns += [Column(f"f{position}", COLUMN_TYPES[kind]) for position, kind in enumerate(data_types, 1)]
    return Table(name, MetaData(), *columns)


@dataclass(frozen=True)
class Touched:
    """The rows that differ between two versions of one generation (what a delivery of changed keys sends)."""

    generation: Table
    added: ColumnElement[bool]  # rows the newer version has and the older has not: inserted or updated since
    closed: ColumnElement[bool]  # rows the older version has and the newer has not: updated or deleted since


def touched_rows(session: Session, item_id: int, old: int, new: int) -> Touched | None:
    """When versions ``old`` and ``new`` are views of one generation, its rows that differ between them, found through
    its indexes (new rows are numbered above every row ``old`` has; closed rows are in the index of closed rows);
    None otherwise."""
    rows = session.execute(
        select(ItemVersion.generation, ItemVersion.fields).where(
            ItemVersion.item_id == item_id, ItemVersion.number.in_([old, new])
        )
    ).all()
    if len(rows) != 2 or rows[0].generation is None or rows[0].generation != rows[1].generation:
        return None
    generation = generation_table(rows[0].generation, [DataType(field["data_type"]) for field in rows[0].fields])
    older = Table(f"item_{item_id}_v{old}", MetaData(), Column(ROW_COLUMN, BigInteger))
    last = select(func.coalesce(func.max(older.c[ROW_COLUMN]), 0)).scalar_subquery()
    since, until, row = generation.c[FROM_COLUMN], generation.c[UNTIL_COLUMN], generation.c[ROW_COLUMN]
    added = and_(row > last, since > old, since <= new, until > new)
    # The sentinel written out: PostgreSQL then sees that the partial index of closed rows holds them all.
    closed = and_(since <= old, until > old, until <= new, until < literal_column(str(OPEN)))
    return Touched(generation, added, closed)


def _converted(connection: Any, version: ItemVersion, width: int) -> str:
    """Turn a version's own table into a generation starting at it (no row rewritten: the new columns have constant
    defaults) with a view under the version's table name; returns the generation's name."""
    name = f"item_{version.item_id}_g{version.number}"
    if connection.dialect.name == "postgresql":
        _lock_for_conversion(connection, version)
    connection.exec_driver_sql(f'ALTER TABLE "{version.table_name}" RENAME TO "{name}"')
    for column, default in ((FROM_COLUMN, version.number), (UNTIL_COLUMN, OPEN)):
        connection.exec_driver_sql(f'ALTER TABLE "{name}" ADD COLUMN "{column}" INTEGER NOT NULL DEFAULT {default}')
    # The closed rows only: what pruning looks for (publish._tidy_generation), never the many current ones.
    connection.exec_driver_sql(
        f'CREATE INDEX "{name}_closed" ON "{name}" ("{UNTIL_COLUMN}") WHERE "{UNTIL_COLUMN}" < {OPEN}'
    )
    connection.exec_driver_sql(_view_sql(version.table_name, name, version.number, width))
    return name


def _lock_for_conversion(connection: Any, version: ItemVersion) -> None:
    """Lock the version's table for its conversion, waiting for the reads going on at most CONVERSION_LOCK_TIMEOUT
    (meanwhile new reads of it queue behind this lock); VersionBusy past it (the transaction is then aborted)."""
    with _lock_timeout(connection, CONVERSION_LOCK_TIMEOUT):
        try:
            connection.exec_driver_sql(f'LOCK TABLE "{version.table_name}" IN ACCESS EXCLUSIVE MODE')
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise VersionBusy(
                f"version {version.number} of the item is being read (a download, a delivery or a query has its "
                f'table "{version.table_name}" open) and could not be locked within {CONVERSION_LOCK_TIMEOUT} to turn '
                "it into a generation for its first incremental export; nothing was published and the batch is not "
                "quarantined: the run fails and is to be retried (the task is; or run the ingestion again)"
            ) from error


@contextmanager
def _lock_timeout(connection: Any, timeout: str) -> Iterator[None]:
    """PostgreSQL's lock_timeout for the statements of the block, in this transaction only; restored after it (an
    error aborts the transaction, whose rollback restores it)."""
    before = connection.scalar(text("SELECT current_setting('lock_timeout')"))
    connection.execute(text("SELECT set_config('lock_timeout', :timeout, true)"), {"timeout": timeout})
    yield
    connection.execute(text("SELECT set_config('lock_timeout', :timeout, true)"), {"timeout": before})


def _view_sql(name: str, generation: str, number: int, width: int) -> str:
    columns = ", ".join(f'"{column}"' for column in [ROW_COLUMN, *(f"f{position}" for position in range(1, width + 1))])
    return (
        f'CREATE VIEW "{name}" AS SELECT {columns} FROM "{generation}" '
        f'WHERE "{FROM_COLUMN}" <= {int(number)} AND "{UNTIL_COLUMN}" > {int(number)}'
    )


def _current_version(session: Session, item_id: int) -> ItemVersion:
    current = session.scalar(
        select(ItemVersion)
        .join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
        .where(CatalogItem.id == item_id)
    )
    if current is None:
        raise DeltaNotApplicable("an incremental export changes the current version, and the item has none yet: "
                                 "send a full export first (one without the operation column)")  # fmt: skip
    return current


def _require_same_fields(current: ItemVersion, fields: Sequence[FieldDeclaration]) -> None:
    """The export's fields must be the version's, in the same order and of the same types."""
    stored = [(field["name"], field["data_type"]) for field in current.fields]
    declared = [(field.name, field.data_type.value) for field in fields]
    if stored != declared:
        raise DeltaNotApplicable(
            f"the item's fields changed since version {current.number} (names, order or types): an incremental export "
            "cannot be applied to it; send a full export (one without the operation column) to start from"
        )
