"""Conforming a raw table to an item's declared fields: the columns must match, values are parsed by type.

Text cells are parsed column-wise with Arrow (RE2 patterns, casts), so a CSV export is never taken apart
cell by cell in Python; cells that JSON or XLSX already typed (numbers, booleans, dates) are converted one
by one. Cells that do not parse become per-row errors (row number, field, the value masked by the field's
level, the rule broken) and are set to null; the quality step then judges the batch as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.classification.masking import mask
from catalog.classification.types import DataType, MaskingRule
from catalog.ingest.errors import SchemaDrift
from catalog.ingest.tables import Column, RawChunk, RawTable
from catalog.items.schemas import FieldDeclaration

SENSITIVE_LEVEL = 3  # values of fields at or above it never appear unmasked in a report
EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's 1900 date system, as serial 0
YMD = r"(?P<y>[0-9]{4})SEP(?P<m>[0-9]{1,2})SEP(?P<d>[0-9]{1,2})"
TIME = r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2})(?::(?P<S>[0-9]{1,2})(?:\.(?P<f>[0-9]{1,6}))?)?"
DATE_PATTERNS = (
    "^" + YMD.replace("SEP", "-") + "$",
    "^" + YMD.replace("SEP", "/") + "$",
    "^" + YMD.replace("SEP", r"\.") + "$",
    r"^(?P<y>[0-9]{4})年(?P<m>[0-9]{1,2})月(?P<d>[0-9]{1,2})日$",
    r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$",
)
DATETIME_PATTERNS = (
    "^" + YMD.replace("SEP", "-") + f"(?:[ T]{TIME})?$",
    "^" + YMD.replace("SEP", "/") + f"(?: {TIME})?$",
    r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})(?P<H>[0-9]{2})(?P<M>[0-9]{2})(?P<S>[0-9]{2})$",
)
INTEGER_PATTERN = r"^[+-]?[0-9]+$"
DECIMAL_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?$"
# PostgreSQL's numeric holds 131,072 digits before the point and 16,383 after: with an exponent of at most 4 digits,
# a decimal of at most this many characters always fits (a longer one is a cell that does not parse, not a failed run).
DECIMAL_CHARACTERS = 1000
TRUE_WORDS = ("true", "1", "y", "yes", "是", "t")
FALSE_WORDS = ("false", "0", "n", "no", "否", "f")
ARROW_TYPES: dict[DataType, pa.DataType] = {
    DataType.STRING: pa.string(),
    DataType.INTEGER: pa.int64(),
    DataType.DECIMAL: pa.string(),  # the number as written (commas removed): exact, whatever its scale
    DataType.DATE: pa.date32(),
    DataType.DATETIME: pa.timestamp("us"),
    DataType.BOOLEAN: pa.bool_(),
}
Parsed = tuple[pa.Array, np.ndarray]  # the typed values, and which cells did not parse
Timed = tuple[np.ndarray, np.ndarray]  # days or microseconds since 1970, and which cells are real dates
Layout = tuple[str, dict[str, tuple[int, int]]]  # a fixed-width shape, and where each part of it is
TIME_PARTS = ("y", "m", "d", "H", "M", "S", "f")
YMD_POSITIONS = {"y": (0, 4), "m": (5, 7), "d": (8, 10)}
DATE_LAYOUT: Layout = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", YMD_POSITIONS)  # what most systems write: parsed fastest
DATETIME_LAYOUT: Layout = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    {**YMD_POSITIONS, "H": (11, 13), "M": (14, 16), "S": (17, 19)},
)


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    value: str | None  # masked when the field is level 3 or above
    message: str


@dataclass(frozen=True)
class ConformedChunk:
    first_row: int
    table: pa.Table  # one column per declared field, by name, in declared order; typed; null where absent or bad
    errors: list[RowError]
    # An incremental export's (catalog/ingest/changes.py): which rows delete their key, and the column saying so.
    deletes: np.ndarray | None = None
    operation_column: str | None = None

    @property
    def size(self) -> int:
        return self.table.num_rows

    @property
    def row_numbers(self) -> np.ndarray:
        return np.arange(self.first_row, self.first_row + self.size, dtype=np.int64)

    @cached_property
    def rejected_rows(self) -> set[int]:
        return {error.row for error in self.errors}


def check_columns(columns: Sequence[str], fields: Sequence[FieldDeclaration]) -> None:
    declared = [field.name for field in fields]
    missing = [name for name in declared if name not in columns]
    unexpected = [name for name in columns if name not in declared]
    if missing or unexpected:
        raise SchemaDrift(missing, unexpected)


def conform(table: RawTable, fields: Sequence[FieldDeclaration]) -> Iterator[ConformedChunk]:
    """Check the columns at once (schema drift), then conform the chunks as they are read."""
    check_columns(table.columns, fields)
    positions = [table.columns.index(field.name) for field in fields]
    return (conform_chunk(chunk, positions, fields) for chunk in table.chunks)


def conform_chunk(chunk: RawChunk, positions: list[int], fields: Sequence[FieldDeclaration]) -> ConformedChunk:
    columns: list[pa.Array] = []
    errors: list[RowError] = []
    for position, field in zip(positions, fields, strict=True):
        cells = chunk.columns[position]
        values, bad = _conform_column(cells, field)
        columns.append(values)
        errors += [_row_error(chunk.first_row + int(i), field, _cell(cells, int(i))) for i in np.flatnonzero(bad)]
    errors.sort(key=lambda error: (error.row, error.field))
    table = pa.Table.from_arrays(columns, names=[field.name for field in fields])
    return ConformedChunk(chunk.first_row, table, errors)


def _cell(cells: Column, index: int) -> Any:
    return cells[index].as_py() if isinstance(cells, pa.Array) else cells[index]


def _row_error(row: int, field: FieldDeclaration, cell: Any) -> RowError:
    return RowError(row, field.name, shown_value(field, cell), EXPECTED[field.data_type])


def shown_value(field: FieldDeclaration, cell: Any) -> str | None:
    """A cell as it may appear in reports and logs: masked when the field is sensitive."""
    text = str(cell)
    if field.level >= SENSITIVE_LEVEL:
        rule = field.masking or MaskingRule.REDACT
        return mask(MaskingRule.REDACT if rule is MaskingRule.HASH else rule, text, key=b"")  # reports need no join
    return text


def _conform_column(cells: Column, field: FieldDeclaration) -> Parsed:
    if isinstance(cells, pa.Array):
        return TEXT_PARSERS[field.data_type](pc.utf8_trim_whitespace(cells))
    return _conform_cells(cells, field)


def _conform_cells(cells: list[Any], field: FieldDeclaration) -> Parsed:
    """JSON and XLSX cells: text through the same Arrow path as CSV, typed cells one by one."""
    texts = pa.array([cell if isinstance(cell, str) else None for cell in cells], type=pa.string())
    values, bad = TEXT_PARSERS[field.data_type](pc.utf8_trim_whitespace(texts))
    typed = [i for i, cell in enumerate(cells) if cell is not None and not isinstance(cell, str)]
    if not typed:
        return values, bad
    merged = values.to_pylist()
    parse = CELL_PARSERS[field.data_type]
    for i in typed:
        try:
            merged[i] = parse(cells[i])
        except (ValueError, InvalidOperation, OverflowError):
            bad[i] = True
    return pa.array(merged, type=ARROW_TYPES[field.data_type]), bad


def _blank(text: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(text), pc.equal(text, ""))


def _failed(text: pa.Array, parsed_ok: pa.Array) -> np.ndarray:
    """Cells with text that did not parse (blank cells are nulls, not errors)."""
    failed = pc.and_(pc.invert(pc.fill_null(parsed_ok, False)), pc.invert(_blank(text)))
    return np.asarray(pc.fill_null(failed, False).to_numpy(zero_copy_only=False), dtype=bool).copy()


def _parse_string(text: pa.Array) -> Parsed:
    return pc.if_else(_blank(text), pa.scalar(None, pa.string()), text), np.zeros(len(text), dtype=bool)


def _parse_integer(text: pa.Array) -> Parsed:
    """Plain digits are cast at once; signs, thousands separators and long numbers go the slow way."""
    plain = np.asarray(
        pc.fill_null(pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.binary_length(text), 18)), False), dtype=bool
    )
    cast = pc.cast(pc.if_else(pa.array(plain), text, None), pa.int64())
    values = np.array(pc.fill_null(cast, 0), dtype=np.int64)  # a writable copy
    ok = plain.copy()
    for i, number in _unusual_integers(text, plain):
        values[i], ok[i] = number, True
    return pa.array(values, type=pa.int64(), mask=~ok), _failed(text, pa.array(ok))


def _unusual_integers(text: pa.Array, plain: np.ndarray) -> Iterator[tuple[int, int]]:
    """(index, value) of the cells that are integers but not plain digits: +12, -3, 1,234, and long ones."""
    rest = np.flatnonzero(~plain & ~_blank_mask(text))
    if not len(rest):
        return
    digits = pc.replace_substring_regex(pc.replace_substring(text.take(pa.array(rest)), ",", ""), r"^\+", "")
    matches = pc.fill_null(pc.match_substring_regex(digits, INTEGER_PATTERN), False).to_pylist()
    for i, number, matched in zip(rest.tolist(), digits.to_pylist(), matches, strict=True):
        if matched and -(2**63) <= int(number) < 2**63:
            yield i, int(number)


def _blank_mask(text: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(_blank(text), True), dtype=bool)


def _parse_decimal(text: pa.Array) -> Parsed:
    number = pc.replace_substring(text, ",", "")
    ok = pc.and_(pc.match_substring_regex(number, DECIMAL_PATTERN),
                 pc.less_equal(pc.binary_length(number), DECIMAL_CHARACTERS))  # fmt: skip
    return pc.if_else(ok, number, pa.scalar(None, pa.string())), _failed(text, ok)


def _parse_date(text: pa.Array) -> Parsed:
    if (usual := _usual_layout_cast(text, DATE_LAYOUT, pa.date32())) is not None:
        return usual
    days, ok = _parse_times(text, DATE_LAYOUT, DATE_PATTERNS, _days_from)
    values = pa.array(days.astype("datetime64[D]"), type=pa.date32(), mask=~ok)
    return values, _failed(text, pa.array(ok))


def _parse_datetime(text: pa.Array) -> Parsed:
    if (usual := _usual_layout_cast(text, DATETIME_LAYOUT, pa.timestamp("us"))) is not None:
        return usual
    micros, ok = _parse_times(text, DATETIME_LAYOUT, DATETIME_PATTERNS, _micros_from)
    values = pa.array(micros.astype("datetime64[us]"), type=pa.timestamp("us"), mask=~ok)
    return values, _failed(text, pa.array(ok))


def _usual_layout_cast(text: pa.Array, layout: Layout, arrow_type: pa.DataType) -> Parsed | None:
    """A column whose every cell is in the usual layout and a real date (or time) is parsed by Arrow's own cast, at
    once (it refuses a 30 February or a 24th hour as the careful way does); any other column goes the careful way,
    which says which cells fail (None)."""
    if text.null_count or not pc.all(pc.match_substring_regex(text, layout[0])).as_py():
        return None
    if pc.any(pc.starts_with(text, "0000")).as_py():  # Arrow takes a year 0, which is no year
        return None
    try:
        return pc.cast(text, arrow_type), np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        return None


def _parse_times(
    text: pa.Array, layout: Layout, patterns: Sequence[str], from_parts: Callable[[dict[str, np.ndarray]], Timed]
) -> Timed:
    """Cells in the usual layout are cut into their parts by position; the others are matched with the patterns."""
    shape, positions = layout
    usual = np.asarray(pc.fill_null(pc.match_substring_regex(text, shape), False), dtype=bool)
    values = np.zeros(len(text), dtype=np.int64)
    ok = np.zeros(len(text), dtype=bool)
    rows = np.flatnonzero(usual)
    if len(rows):
        usual_text = text.take(pa.array(rows)) if len(rows) < len(text) else text
        parts = dict.fromkeys(TIME_PARTS, np.zeros(len(rows), dtype=np.int64))
        for name, (start, stop) in positions.items():
            part = pc.cast(pc.utf8_slice_codeunits(usual_text, start, stop), pa.int64())
            parts[name] = np.asarray(part, dtype=np.int64)
        values[rows], ok[rows] = from_parts(parts)
    rest = np.flatnonzero(~usual & ~_blank_mask(text))
    if len(rest):
        values[rest], ok[rest] = from_parts(_first_match(text.take(pa.array(rest)), patterns))
    return values, ok


def _days_from(parts: dict[str, np.ndarray]) -> Timed:
    return _calendar_days(parts["y"], parts["m"], parts["d"])


def _micros_from(parts: dict[str, np.ndarray]) -> Timed:
    days, ok = _calendar_days(parts["y"], parts["m"], parts["d"])
    hours, minutes, seconds = parts["H"], parts["M"], parts["S"]
    ok &= (hours < 24) & (minutes < 60) & (seconds < 60)
    return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1_000_000 + parts["f"], ok


def _first_match(text: pa.Array, patterns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named parts of the first pattern each cell matches, as integers (0 where absent or unmatched)."""
    names = TIME_PARTS
    parts = {name: np.zeros(len(text), dtype=np.int64) for name in names}
    matched = np.zeros(len(text), dtype=bool)
    for pattern in patterns:
        found = pc.extract_regex(text, pattern)
        rows = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & ~matched
        if not rows.any():
            continue
        for name in names:
            if f"(?P<{name}>" in pattern:
                part = pc.struct_field(found, name)
                if name == "f":  # a fraction of a second, as microseconds
                    part = pc.utf8_rpad(part, width=6, padding="0")
                number = pc.cast(pc.if_else(pc.equal(part, ""), "0", part), pa.int64())
                parts[name][rows] = np.asarray(pc.fill_null(number, 0).to_numpy(zero_copy_only=False))[rows]
        matched |= rows
    return parts


def _calendar_days(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 where year, month and day name a real date (no 30 February)."""
    ok = (years >= 1) & (years <= 9999) & (months >= 1) & (months <= 12) & (days >= 1)
    month_index = np.where(ok, (years - 1970) * 12 + months - 1, 0).astype("datetime64[M]")
    first_day = month_index.astype("datetime64[D]")
    month_length = ((month_index + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    ok &= days <= month_length
    return np.where(ok, first_day.astype(np.int64) + days - 1, 0), ok


def _parse_boolean(text: pa.Array) -> Parsed:
    word = pc.utf8_lower(text)
    true, false = pc.is_in(word, value_set=pa.array(TRUE_WORDS)), pc.is_in(word, value_set=pa.array(FALSE_WORDS))
    values = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
    return values, _failed(text, pc.or_(true, false))


def _in_int64(value: int) -> int:
    if not -(2**63) <= value < 2**63:
        raise ValueError("outside the 64-bit integer range")
    return value


def _typed_integer(cell: Any) -> int:
    if isinstance(cell, bool) or not (isinstance(cell, int) or (isinstance(cell, float) and cell.is_integer())):
        raise ValueError("not an integer")
    return _in_int64(int(cell))


def _typed_decimal(cell: Any) -> str:
    if isinstance(cell, bool) or not isinstance(cell, int | float | Decimal):
        raise ValueError("not a number")
    value = Decimal(str(cell))
    if not value.is_finite() or len(str(value)) > DECIMAL_CHARACTERS:
        raise ValueError("not a finite number PostgreSQL can hold")
    return str(value)


def _typed_date(cell: Any) -> date:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    return _excel_serial(cell).date()


def _typed_datetime(cell: Any) -> datetime:
    if isinstance(cell, datetime):
        return cell
    if isinstance(cell, date):
        return datetime(cell.year, cell.month, cell.day)
    return _excel_serial(cell)


def _excel_serial(serial: Any) -> datetime:
    if isinstance(serial, bool) or not isinstance(serial, int | float) or not 1 <= serial < 2958466:
        raise ValueError(f"{serial} is not an Excel date serial")  # 1900-01-01 .. 9999-12-31
    return (EXCEL_EPOCH + timedelta(days=serial)).replace(microsecond=0)


def _typed_boolean(cell: Any) -> bool:
    if isinstance(cell, bool):
        return cell
    if isinstance(cell, int) and cell in (0, 1):
        return bool(cell)
    raise ValueError("not a boolean")


def _typed_string(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # XLSX keeps codes such as 440307 as numbers
    return str(cell)


TEXT_PARSERS: dict[DataType, Callable[[pa.Array], Parsed]] = {
    DataType.STRING: _parse_string,
    DataType.INTEGER: _parse_integer,
    DataType.DECIMAL: _parse_decimal,
    DataType.DATE: _parse_date,
    DataType.DATETIME: _parse_datetime,
    DataType.BOOLEAN: _parse_boolean,
}
CELL_PARSERS: dict[DataType, Callable[[Any], Any]] = {
    DataType.STRING: _typed_string,
    DataType.INTEGER: _typed_integer,
    DataType.DECIMAL: _typed_decimal,
    DataType.DATE: _typed_date,
    DataType.DATETIME: _typed_datetime,
    DataType.BOOLEAN: _typed_boolean,
}
EXPECTED: dict[DataType, str] = {
    DataType.INTEGER: "not an integer",
    DataType.DECIMAL: "not a decimal number",
    DataType.DATE: "not a date (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日 or an Excel date)",
    DataType.DATETIME: "not a date and time (YYYY-MM-DD HH:MM[:SS] and similar, or an Excel date)",
    DataType.BOOLEAN: "not a boolean (true/false, 1/0, 是/否)",
    DataType.STRING: "not text",
}
