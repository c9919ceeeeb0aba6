"""Reading an export into a table of raw cells: CSV, JSON (array or lines) and XLSX.

Cells stay as the format gives them (text for CSV; text, numbers, booleans for JSON; numbers and dates for
XLSX); conforming to the declared types is the next step. Row numbers count data rows from 1.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from catalog.ingest.errors import ExportNotReadable

Cell = Any  # str, int, float, bool, date or datetime as the format gives it, or None


@dataclass(frozen=True)
class RawTable:
    columns: list[str]
    rows: list[list[Cell]]  # one list per data row, in column order; None where a JSON record lacks a key


def read_csv(text: str) -> RawTable:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise ExportNotReadable("the CSV export has no header row")
        columns = _checked_columns([name.strip() for name in header])
        rows: list[list[Cell]] = []
        for row in reader:
            if not row:
                continue  # blank line, usually the last one
            if len(row) != len(columns):
                raise ExportNotReadable(
                    f"row {len(rows) + 1} (line {reader.line_num}) has {len(row)} values where the header has "
                    f"{len(columns)} columns; the file may be truncated or a value holds an unquoted comma"
                )
            rows.append(list(row))
    except csv.Error as error:
        raise ExportNotReadable(f"the CSV export is malformed at line {reader.line_num}: {error}") from None
    return RawTable(columns, rows)


def read_json(text: str) -> RawTable:
    """A JSON array of objects, or JSON lines (one object per line)."""
    stripped = text.lstrip()
    records = _json_array(stripped) if stripped.startswith("[") else _json_lines(text)
    columns: dict[str, None] = {}
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ExportNotReadable(f"record {number} is not a JSON object")
        columns.update(dict.fromkeys(record))
    names = list(columns)
    _checked_columns(names)
    return RawTable(names, [[record.get(name) for name in names] for record in records])


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


def read_xlsx(data: bytes) -> RawTable:
    """The first worksheet; its first row is the header. Dates arrive as dates, numbers as numbers."""
    from openpyxl import load_workbook  # only XLSX exports need it

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
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
    return RawTable(columns, rows)


def _xlsx_cell(cell: Any) -> Cell:
    return cell.strip() if isinstance(cell, str) else cell


def _checked_columns(columns: list[str]) -> list[str]:
    if any(not name for name in columns):
        raise ExportNotReadable("the header has an empty column name")
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise ExportNotReadable(f"the header names column(s) more than once: {', '.join(repeated)}")
    return columns
