"""Reading an export into a table of raw cells: CSV, JSON (array or lines) and XLSX.

Cells stay as the format gives them (text for CSV; text, numbers, booleans for JSON; numbers and dates for
XLSX); conforming to the declared types is the next step. Row numbers count data rows from 1.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import pyarrow as pa
import pyarrow.csv as pacsv

from catalog.ingest.decode import DecodedFile
from catalog.ingest.errors import ExportNotReadable
from catalog.ingest.paced_file import PacedFile

Cell = Any  # str, int, float, bool, date or datetime as the format gives it, or None
Column: TypeAlias = pa.Array | list[Cell]  # Arrow strings (CSV), or cells as JSON or XLSX give them
CSV_BLOCK_BYTES = 8 << 20  # Arrow parses a CSV export in blocks of this size (about 36,000 rows of 20 columns): it
# parses smaller blocks faster (in cache), and fewer bytes wait in its read-ahead: measured 32 MB -> 8 MB, CSV parse
# CPU halved and the peak memory of a 5,000,000-row ingestion 1.9 GB -> 1.2 GB
CSV_BLOCKS_AHEAD = 2  # blocks Arrow may read ahead of the chunks taken (catalog/ingest/paced_file.py)
CHUNK_ROWS = 100_000  # JSON and XLSX rows per chunk


@dataclass(frozen=True)
class RawChunk:
    first_row: int  # the number of the chunk's first data row; rows count from 1
    columns: list[Column]  # in the table's column order

    @property
    def size(self) -> int:
        return len(self.columns[0]) if self.columns else 0


@dataclass(frozen=True)
class RawTable:
    """An export's header and its rows in chunks, read as they are consumed (once)."""

    columns: list[str]
    chunks: Iterable[RawChunk]

    @classmethod
    def from_rows(cls, columns: list[str], rows: list[list[Cell]]) -> RawTable:
        return cls(columns, _chunked(len(columns), iter(rows)))


def _chunked(width: int, rows: Iterator[list[Cell]]) -> Iterator[RawChunk]:
    first_row = 1
    while block := list(islice(rows, CHUNK_ROWS)):
        yield RawChunk(first_row, [[row[i] for row in block] for i in range(width)])
        first_row += len(block)


CsvSource: TypeAlias = bytes | DecodedFile  # UTF-8 text in memory, or in a file read a block at a time


def read_csv(text: str | CsvSource) -> RawTable:
    """A CSV export (UTF-8) with a header row, parsed by Arrow in blocks; every cell stays text."""
    source = text.encode("utf-8") if isinstance(text, str) else text
    header = _csv_header(source)
    return RawTable([name.strip() for name in header], _csv_chunks(source, header))


def _opened(source: CsvSource) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open()


def _csv_lines(handle: BinaryIO) -> Any:
    return csv.reader(io.TextIOWrapper(handle, encoding="utf-8", newline=""), strict=True)


def _csv_header(source: CsvSource) -> list[str]:
    with _opened(source) as handle:
        try:
            header = next(_csv_lines(handle), None)
        except csv.Error as error:
            raise ExportNotReadable(f"the CSV export's header is malformed: {error}") from None
    if not header or not any(name.strip() for name in header):
        raise ExportNotReadable("the CSV export has no header row")
    _checked_columns([name.strip() for name in header])
    return header


def _csv_chunks(source: CsvSource, header: list[str]) -> Iterator[RawChunk]:
    first_row = 1
    try:
        with PacedFile(_opened(source), CSV_BLOCKS_AHEAD) as stream:
            for batch in stream.batches(lambda opened: _arrow_csv_reader(opened, header)):
                if batch.num_rows:
                    yield RawChunk(first_row, list(batch.columns))
                    first_row += batch.num_rows
    except pa.ArrowInvalid:
        _raise_csv_error(source, len(header))
        # Arrow's message quotes the row, which may hold sensitive values: never pass it on
        raise ExportNotReadable(f"the CSV export is malformed after row {first_row - 1}") from None


def _arrow_csv_reader(stream: PacedFile, header: list[str]) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _raise_csv_error(source: CsvSource, width: int) -> None:
    """Find the row Arrow refused with Python's stricter reader, to say where and why without quoting it."""
    with _opened(source) as handle:
        _find_csv_error(_csv_lines(handle), width)


def _find_csv_error(reader: Any, width: int) -> None:
    row_number = 0
    try:
        next(reader, None)
        for row in reader:
            if not row:
                continue  # blank line, usually the last one
            row_number += 1
            if len(row) != width:
                raise ExportNotReadable(
                    f"row {row_number} (line {reader.line_num}) has {len(row)} values where the header has "
                    f"{width} columns; the file may be truncated or a value holds an unquoted comma"
                )
    except csv.Error as error:
        raise ExportNotReadable(f"the CSV export is malformed at line {reader.line_num}: {error}") from None
    except UnicodeDecodeError:
        raise ExportNotReadable("the CSV export is not UTF-8 text after decoding") from None


def read_json(text: str | bytes) -> RawTable:
    """A JSON array of objects, or JSON lines (one object per line)."""
    text = text.decode("utf-8") if isinstance(text, bytes) else text
    stripped = text.lstrip()
    records = _json_array(stripped) if stripped.startswith("[") else _json_lines(text)
    columns: dict[str, None] = {}
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ExportNotReadable(f"record {number} is not a JSON object")
        columns.update(dict.fromkeys(record))
    names = list(columns)
    _checked_columns(names)
    return RawTable.from_rows(names, [[record.get(name) for name in names] for record in records])


def _json_array(text: str) -> list[Any]:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportNotReadable(f"the JSON export is malformed at line {error.lineno}: {error.msg}") from None
    if not isinstance(records, list):
        raise ExportNotReadable("the JSON export is not an array of records")
    return records


def _json_lines(text: str) -> list[Any]:
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ExportNotReadable(f"JSON lines export: line {line_number} is not JSON: {error.msg}") from None
    return records


def read_xlsx(data: bytes | Path) -> RawTable:
    """The first worksheet; its first row is the header. Dates arrive as dates, numbers as numbers."""
    from openpyxl import load_workbook  # only XLSX exports need it

    try:
        workbook = load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken file
        raise ExportNotReadable(f"the XLSX export cannot be opened: {error}") from None
    try:
        sheet = workbook.worksheets[0]
        lines = sheet.iter_rows(values_only=True)
        header = next(lines, None)
        if not header or all(cell is None for cell in header):
            raise ExportNotReadable("the XLSX export has no header row")
        width = max(i + 1 for i, cell in enumerate(header) if cell is not None)
        columns = _checked_columns([str(cell).strip() if cell is not None else "" for cell in header[:width]])
        rows: list[list[Cell]] = []
        for line in lines:
            cells = [_xlsx_cell(cell) for cell in line[:width]]
            if all(cell is None for cell in cells):
                continue
            rows.append(cells + [None] * (width - len(cells)))
    finally:
        workbook.close()
    return RawTable.from_rows(columns, rows)


def _xlsx_cell(cell: Any) -> Cell:
    return cell.strip() if isinstance(cell, str) else cell


def _checked_columns(columns: list[str]) -> list[str]:
    if any(not name for name in columns):
        raise ExportNotReadable("the header has an empty column name")
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise ExportNotReadable(f"the header names column(s) more than once: {', '.join(repeated)}")
    return columns
