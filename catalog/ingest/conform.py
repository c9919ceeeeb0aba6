"""Conforming a raw table to an item's declared fields: the columns must match, values are parsed by type.

Cells that do not parse become per-row errors (row number, field, the value masked by the field's level,
the rule broken) and are set to null; the quality step then judges the batch as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from catalog.classification.masking import mask
from catalog.classification.types import DataType, MaskingRule
from catalog.ingest.errors import SchemaDrift
from catalog.ingest.tables import RawTable
from catalog.items.schemas import FieldDeclaration

SENSITIVE_LEVEL = 3  # values of fields at or above it never appear unmasked in a report
EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's 1900 date system, as serial 0
DATE_LAYOUTS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日", "%Y.%m.%d")
DATETIME_LAYOUTS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S", "%Y-%m-%d",
)  # fmt: skip
TRUE_WORDS = frozenset({"true", "1", "y", "yes", "是", "t"})
FALSE_WORDS = frozenset({"false", "0", "n", "no", "否", "f"})
INTEGER_TEXT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    value: str | None  # masked when the field is level 3 or above
    message: str


@dataclass(frozen=True)
class ConformedTable:
    frame: pd.DataFrame  # one column per declared field, in declared order, typed; null where absent or bad
    errors: list[RowError]

    @property
    def rows_read(self) -> int:
        return len(self.frame)

    @property
    def rejected_rows(self) -> set[int]:
        return {error.row for error in self.errors}


def check_columns(columns: Sequence[str], fields: Sequence[FieldDeclaration]) -> None:
    declared = [field.name for field in fields]
    missing = [name for name in declared if name not in columns]
    unexpected = [name for name in columns if name not in declared]
    if missing or unexpected:
        raise SchemaDrift(missing, unexpected)


def conform(table: RawTable, fields: Sequence[FieldDeclaration]) -> ConformedTable:
    check_columns(table.columns, fields)
    positions = {name: index for index, name in enumerate(table.columns)}
    rows = pd.RangeIndex(1, len(table.rows) + 1, name="row")
    columns: dict[str, pd.Series] = {}
    errors: list[RowError] = []
    for field in fields:
        position = positions[field.name]
        values, field_errors = _parse_column([row[position] for row in table.rows], field)
        columns[field.name] = pd.Series(values, index=rows, dtype=DTYPES[field.data_type])
        errors.extend(field_errors)
    frame = pd.DataFrame(columns, index=rows)
    errors.sort(key=lambda error: (error.row, error.field))
    return ConformedTable(frame, errors)


def _parse_column(cells: list[Any], field: FieldDeclaration) -> tuple[list[Any], list[RowError]]:
    parse = PARSERS[field.data_type]
    values: list[Any] = []
    errors: list[RowError] = []
    for row, cell in enumerate(cells, start=1):
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            values.append(None)
            continue
        try:
            values.append(parse(cell))
        except (ValueError, InvalidOperation, OverflowError):
            values.append(None)
            errors.append(RowError(row, field.name, shown_value(field, cell), _expected(field.data_type)))
    return values, errors


def shown_value(field: FieldDeclaration, cell: Any) -> str | None:
    """A cell as it may appear in reports and logs: masked when the field is sensitive."""
    text = str(cell)
    if field.level >= SENSITIVE_LEVEL:
        return mask(field.masking or MaskingRule.REDACT, text)
    return text


def _text(cell: Any) -> str:
    return cell.strip() if isinstance(cell, str) else str(cell)


def _integer(cell: Any) -> int:
    if isinstance(cell, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(cell, int):
        return _in_int64(cell)
    if isinstance(cell, float) and cell.is_integer():
        return _in_int64(int(cell))
    text = str(cell).strip().replace(",", "")
    if not INTEGER_TEXT.match(text):
        raise ValueError(text)
    return _in_int64(int(text))


def _in_int64(value: int) -> int:
    if not -(2**63) <= value < 2**63:
        raise ValueError("outside the 64-bit integer range")
    return value


def _decimal(cell: Any) -> Decimal:
    if isinstance(cell, bool):
        raise ValueError("a boolean is not a number")
    value = Decimal(str(cell).strip().replace(",", ""))
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def _date(cell: Any) -> date:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return _excel_serial(cell).date()
    return _parse_layouts(str(cell).strip(), DATE_LAYOUTS).date()


def _datetime(cell: Any) -> datetime:
    if isinstance(cell, datetime):
        return cell
    if isinstance(cell, date):
        return datetime(cell.year, cell.month, cell.day)
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return _excel_serial(cell)
    return _parse_layouts(str(cell).strip(), DATETIME_LAYOUTS)


def _excel_serial(serial: float) -> datetime:
    if not 1 <= serial < 2958466:  # 1900-01-01 .. 9999-12-31
        raise ValueError(f"{serial} is not an Excel date serial")
    return (EXCEL_EPOCH + timedelta(days=serial)).replace(microsecond=0)


def _parse_layouts(text: str, layouts: tuple[str, ...]) -> datetime:
    for layout in layouts:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise ValueError(text)


def _boolean(cell: Any) -> bool:
    if isinstance(cell, bool):
        return cell
    word = str(cell).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(word)


def _expected(data_type: DataType) -> str:
    return {
        DataType.INTEGER: "not an integer",
        DataType.DECIMAL: "not a decimal number",
        DataType.DATE: "not a date (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, YYYY年MM月DD日 or an Excel date)",
        DataType.DATETIME: "not a date and time (YYYY-MM-DD HH:MM[:SS] and similar, or an Excel date)",
        DataType.BOOLEAN: "not a boolean (true/false, 1/0, 是/否)",
        DataType.STRING: "not text",
    }[data_type]


PARSERS: dict[DataType, Callable[[Any], Any]] = {
    DataType.STRING: _text,
    DataType.INTEGER: _integer,
    DataType.DECIMAL: _decimal,
    DataType.DATE: _date,
    DataType.DATETIME: _datetime,
    DataType.BOOLEAN: _boolean,
}
DTYPES: dict[DataType, str] = {
    DataType.STRING: "object",
    DataType.INTEGER: "Int64",
    DataType.DECIMAL: "object",
    DataType.DATE: "object",
    DataType.DATETIME: "datetime64[us]",
    DataType.BOOLEAN: "boolean",
}
