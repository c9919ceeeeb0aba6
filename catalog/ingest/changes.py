"""The incremental export: what a department's system sends for an item declared ``load: {mode: incremental}``.

An export that has the declared operation column (``_op`` unless declared otherwise) carries changed keys only:
each row inserts or updates its key (``I``, ``U``; ``insert``, ``update``, ``upsert``; 新增, 修改) or deletes it
(``D``; ``delete``; 删除), in any case. A deletion needs the key fields only: its other cells are not read, checked or
kept. An export without the column is a full export, as for any item. A row whose operation is none of these words
breaks the rule ``operation`` (with its row number), as a cell that does not parse breaks its field's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.ingest.conform import ConformedChunk, RowError, check_columns, conform, conform_chunk
from catalog.ingest.tables import Column, RawChunk, RawTable
from catalog.items.schemas import FieldDeclaration, LoadMode, LoadPolicy

UPSERT_WORDS = ("i", "u", "insert", "update", "upsert", "新增", "修改")
DELETE_WORDS = ("d", "delete", "删除")
NOT_AN_OPERATION = "not an operation (I, U or D; insert, update, upsert or delete; 新增, 修改 or 删除)"


def is_delta(table: RawTable, load: LoadPolicy) -> bool:
    """The export is an incremental one: the item takes them, and the export has the operation column."""
    return load.mode is LoadMode.INCREMENTAL and load.operation_column in table.columns


def conform_export(table: RawTable, fields: Sequence[FieldDeclaration], load: LoadPolicy) -> Iterator[ConformedChunk]:
    """Conform a full export, or an incremental one with each row's operation."""
    if not is_delta(table, load):
        return conform(table, fields)
    column = load.operation_column
    check_columns([name for name in table.columns if name != column], fields)
    positions = [table.columns.index(field.name) for field in fields]
    where = table.columns.index(column)
    return (_delta_chunk(chunk, positions, where, fields, column) for chunk in table.chunks)


def _delta_chunk(
    chunk: RawChunk, positions: list[int], where: int, fields: Sequence[FieldDeclaration], column: str
) -> ConformedChunk:
    conformed = conform_chunk(chunk, positions, fields)
    words = _words(chunk.columns[where])
    deletes, known = _among(words, DELETE_WORDS), _among(words, UPSERT_WORDS + DELETE_WORDS)
    keys = {field.name for field in fields if field.key}
    first = chunk.first_row
    errors = [error for error in conformed.errors if error.field in keys or not deletes[error.row - first]]
    unknown = np.flatnonzero(~known)
    if len(unknown):
        raw = _texts(chunk.columns[where])
        errors += [RowError(first + int(i), column, raw[int(i)], NOT_AN_OPERATION) for i in unknown]
    errors.sort(key=lambda error: (error.row, error.field))
    kept = pa.array(~deletes)
    columns = [
        values if field.key else pc.if_else(kept, values, pa.scalar(None, values.type))
        for values, field in zip(conformed.table.columns, fields, strict=True)
    ]
    table = pa.Table.from_arrays(columns, names=conformed.table.column_names)
    return ConformedChunk(first, table, errors, deletes=deletes, operation_column=column)


def _among(words: pa.Array, values: Sequence[str]) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.is_in(words, value_set=pa.array(values)), False), dtype=bool)


def _texts(cells: Column) -> list[str | None]:
    if isinstance(cells, pa.Array):
        return [None if value is None else str(value) for value in cells.to_pylist()]
    return [None if cell is None else str(cell) for cell in cells]


def _words(cells: Column) -> pa.Array:
    """The operations, trimmed and in lower case (JSON and XLSX cells as their text)."""
    text = cells if isinstance(cells, pa.Array) else pa.array(_texts(cells), type=pa.string())
    return pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(text, pa.string())))
