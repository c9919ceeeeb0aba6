"""Batch quality with Great Expectations 1.x: a suite built from the item's field declarations.

Types were checked while conforming (those row errors join the report); GX checks not-null, key uniqueness
(compound keys too), code lists, ranges, patterns, resident ID and unified social credit code check
characters (custom expectations), phone and e-mail formats, and the row count against the current version.
Example values of fields at level 3 or above are masked in the report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from catalog.classification.types import DataType, SemanticType
from catalog.ingest.conform import ConformedChunk, shown_value
from catalog.ingest.reasons import reason
from catalog.ingest.spool import TableSpool
from catalog.ingest.third_party import load_great_expectations
from catalog.items.schemas import VALUE_PARSERS, FieldDeclaration, QualityPolicy

MAX_ROWS_SHOWN = 20
OPERATION_RULE = "operation"  # an incremental export's operation column (catalog/ingest/changes.py)
# Each GX run costs about 0.3 s before it looks at a row: chunks are validated a few together.
ROWS_PER_VALIDATION = 400_000
# GX copies the frame it validates once per rule: from this many rows on, each column is judged on a frame of its own
# (a run costs about 8 ms more per column; on a small batch that is most of GX's time, on a large one a saving).
COLUMN_BY_COLUMN_ROWS = 50_000
NANOSECOND_RANGE = (datetime(1677, 9, 22), datetime(2262, 4, 11))  # what datetime64[ns] holds


@dataclass(frozen=True)
class CheckResult:
    field: str  # a field name, "+"-joined key fields, or "*" for the whole batch
    rule: str
    success: bool
    checked: int | None = None
    failed: int | None = None
    failing_rows: list[int] = dataclasses.field(default_factory=list)  # the first MAX_ROWS_SHOWN
    examples: list[str | None] = dataclasses.field(default_factory=list)  # masked above level 2
    observed: Any = None
    error: str | None = None
    expected: str | None = None  # what a batch rule asked for, e.g. the row count's threshold and where it comes from


@dataclass(frozen=True)
class Rows:
    """Rows of an export waiting to be judged: their columns, and their numbers in the export."""

    table: pa.Table
    numbers: np.ndarray


class FailingRowSink(Protocol):
    """Takes every failing row of a check (the report itself keeps the first MAX_ROWS_SHOWN)."""

    def add(self, field: str, rule: str, rows: Iterable[int]) -> None: ...


@dataclass(frozen=True)
class RowFloor:
    """The fewest rows a batch may have: a share of the current version's rows, and never none."""

    minimum: int
    previous_rows: int | None = None
    share: float | None = None  # of the previous version's rows

    def describe(self) -> str:
        if self.previous_rows and self.share is not None:
            return reason("share_of_previous", minimum=self.minimum, share=f"{self.share * 100:g}",
                          previous=self.previous_rows)  # fmt: skip
        return reason("never_empty", minimum=self.minimum)


@dataclass(frozen=True)
class QualityReport:
    checks: list[CheckResult]
    failing_rows: frozenset[int] = frozenset()  # every row that broke a row-level rule, not only those shown

    @property
    def success(self) -> bool:
        return all(check.success for check in self.checks)

    @property
    def only_row_failures(self) -> bool:
        """Every failed check names its rows, so dropping them leaves a clean batch."""
        return all(check.success or (check.field != "*" and bool(check.failed)) for check in self.checks)

    def reasons(self) -> list[str]:
        return [_reason(check) for check in self.checks if not check.success]

    def as_dict(self) -> dict[str, Any]:
        return {"success": self.success, "checks": [asdict(check) for check in self.checks]}


def _reason(check: CheckResult) -> str:
    where = {"field": check.field, "rule": check.rule}
    if check.error:
        return reason("unchecked", **where, error=check.error)
    if check.failed is None and check.expected:
        return reason("too_few_rows", **where, observed=check.observed, expected=check.expected)
    if check.failed is None:
        return reason("failed", **where, observed=check.observed)
    rows = ", ".join(str(row) for row in check.failing_rows[:5])
    more = "…" if check.failed > 5 else ""
    return reason("failed_rows", **where, failed=check.failed, rows=rows + more)


class BatchValidator:
    """Validates a batch chunk by chunk: each chunk's column rules as it arrives, then, in ``finish``, the
    rules about the batch as a whole (row count, key uniqueness) over the key columns gathered on the way.

    One GX context and two suites serve every chunk; results of the same rule are added up across chunks.

    An incremental export's (``delta``) row count is not judged here: what it must not shrink is the version it
    makes (``volume_check``, once it is merged). Its deletions are judged by the key fields' rules only.
    """

    def __init__(
        self,
        fields: Sequence[FieldDeclaration],
        floor: RowFloor,
        failing_rows: FailingRowSink | None = None,
        delta: bool = False,
    ) -> None:
        self._fields = list(fields)
        self._by_name = {declared.name: declared for declared in fields}
        self._keys = [declared.name for declared in fields if declared.key]
        self._floor = floor
        self._sink = failing_rows
        self._row_suite, self._batch_suite = _suites(fields, None if delta else floor.minimum)
        key_fields = [declared for declared in fields if declared.key]
        self._key_suite = _suites(key_fields, None)[0] if delta else None  # for the deletions' rows
        self._batches = _batch_definition()
        self._column_suites: dict[int, list[tuple[str, Any]]] = {}
        self._tallies: dict[tuple[str, str], CheckResult] = {}
        self._failing: set[int] = set()
        # Kept as Arrow (compact, shared with the chunks) until Great Expectations is given them as a frame.
        self._keys_read = TableSpool()  # every row's key, in the export's order, waiting on disk for the batch rules
        self._first_row = 1
        self._pending: list[Rows] = []  # chunks waiting for the row rules
        self._pending_keys: list[Rows] = []  # deletions waiting for the key fields' rules
        self.rows_read = 0
        # GX filters the whole frame for each rule: it is given only the columns a rule judges (the keys included).
        judged = _columns_judged(self._row_suite) | set(self._keys)
        self._judged = [name for name in self._by_name if name in judged]

    def add(self, chunk: ConformedChunk) -> None:
        self.rows_read += chunk.size
        self._failing |= chunk.rejected_rows
        for check in _type_checks(chunk, self._fields):
            self._tally(check)
        if chunk.operation_column is not None:
            self._tally(_operation_check(chunk, chunk.operation_column))
        if self._sink is not None:
            for error in chunk.errors:
                self._sink.add(error.field, self._rule_of(error.field), (error.row,))
        if not self._keys_read.rows:
            self._first_row = chunk.first_row  # the chunks follow each other: their rows are numbered on from it
        self._keys_read.add(chunk.table.select(self._keys))
        judged, rows = chunk.table.select(self._judged), chunk.row_numbers
        if chunk.deletes is not None and chunk.deletes.any():
            deleted = pa.array(chunk.deletes)
            self._pending_keys.append(Rows(chunk.table.select(self._keys).filter(deleted), rows[chunk.deletes]))
            judged, rows = judged.filter(pc.invert(deleted)), rows[~chunk.deletes]
        self._pending.append(Rows(judged, rows))
        if sum(len(pending.numbers) for pending in (*self._pending, *self._pending_keys)) >= ROWS_PER_VALIDATION:
            self._run_row_rules()

    def _rule_of(self, name: str) -> str:
        declared = self._by_name.get(name)
        return OPERATION_RULE if declared is None else f"type {declared.data_type.value}"

    def finish(self) -> QualityReport:
        self._run_row_rules()
        keys = self._keys_read.read_all()
        if keys is None:
            self._run(self._batch_suite, pd.DataFrame(columns=self._keys))
        else:  # every row, in order: numbered from the first chunk's first row on
            numbers = pd.RangeIndex(self._first_row, self._first_row + keys.num_rows, name="row")
            self._run(self._batch_suite, _for_gx(keys, self._fields, numbers))
        ordered = sorted(self._tallies.values(), key=lambda check: (check.field != "*", check.field, check.rule))
        return QualityReport(ordered, frozenset(self._failing))

    def _run_row_rules(self) -> None:
        for suite, pending in ((self._row_suite, self._pending), (self._key_suite, self._pending_keys)):
            parts = [part for part in pending if len(part.numbers)]
            if parts and suite is not None and suite.expectations:
                table = pa.concat_tables([part.table for part in parts])
                numbers = pd.Index(np.concatenate([part.numbers for part in parts]), name="row")
                frame = _for_gx(table, self._fields, numbers)
                if len(frame) < COLUMN_BY_COLUMN_ROWS:
                    self._run(suite, frame)
                    continue
                for column, column_suite in self._by_column(suite):
                    self._run(column_suite, frame[[column]])
        self._pending, self._pending_keys = [], []

    def _by_column(self, suite: Any) -> list[tuple[str, Any]]:
        """The suite's rules as one suite per column they judge, each run on a frame of its column alone."""
        if id(suite) not in self._column_suites:
            self._column_suites[id(suite)] = _column_suites(suite)
        return self._column_suites[id(suite)]

    def _run(self, suite: Any, frame: pd.DataFrame) -> None:
        batch = self._batches.get_batch(batch_parameters={"dataframe": frame})
        # COMPLETE lists every failing row (the drop policy needs them all); the report keeps the first few.
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        for outcome in result.results:
            rows = [_row(entry) for entry in _details(outcome).get("unexpected_index_list") or []]
            self._failing.update(rows)
            check = _check_result(outcome, self._by_name)
            if self._sink is not None and rows:
                self._sink.add(check.field, check.rule, rows)
            if check.rule == "row count":
                check = dataclasses.replace(check, expected=self._floor.describe())
            self._tally(check)

    def _tally(self, check: CheckResult) -> None:
        key = (check.field, check.rule)
        earlier = self._tallies.get(key)
        self._tallies[key] = check if earlier is None else _added(earlier, check)


def _added(earlier: CheckResult, later: CheckResult) -> CheckResult:
    def total(a: int | None, b: int | None) -> int | None:
        return None if a is None and b is None else (a or 0) + (b or 0)

    return dataclasses.replace(
        earlier,
        success=earlier.success and later.success,
        checked=total(earlier.checked, later.checked),
        failed=total(earlier.failed, later.failed),
        failing_rows=(earlier.failing_rows + later.failing_rows)[:MAX_ROWS_SHOWN],
        examples=(earlier.examples + later.examples)[:MAX_ROWS_SHOWN],
        observed=later.observed if later.observed is not None else earlier.observed,
        error=earlier.error or later.error,
    )


def validate_batch(
    chunks: Iterable[ConformedChunk],
    fields: Sequence[FieldDeclaration],
    previous_rows: int | None,
    policy: QualityPolicy | None = None,
) -> QualityReport:
    """The whole report for a batch at once (for small batches and tests)."""
    validator = BatchValidator(fields, row_floor(previous_rows, policy or QualityPolicy()))
    for chunk in chunks:
        validator.add(chunk)
    return validator.finish()


def minimum_rows(previous_rows: int | None, policy: QualityPolicy) -> int:
    """An export may shrink by at most max_volume_drop against the current version, and is never empty."""
    if not previous_rows:
        return 1
    return max(1, math.ceil(previous_rows * (1 - policy.max_volume_drop)))


def row_floor(previous_rows: int | None, policy: QualityPolicy) -> RowFloor:
    return RowFloor(minimum_rows(previous_rows, policy), previous_rows, 1 - policy.max_volume_drop)


def volume_check(rows: int, floor: RowFloor) -> CheckResult:
    """An incremental export's row count rule: the version it makes (not the export) may shrink by at most the
    policy's share, as a full export may."""
    return CheckResult("*", "row count", rows >= floor.minimum, observed=rows, expected=floor.describe())


def with_check(report: QualityReport, check: CheckResult) -> QualityReport:
    return dataclasses.replace(report, checks=[check, *report.checks])


def _operation_check(chunk: ConformedChunk, column: str) -> CheckResult:
    errors = [error for error in chunk.errors if error.field == column]
    return CheckResult(
        field=column,
        rule=OPERATION_RULE,
        success=not errors,
        checked=chunk.size,
        failed=len(errors),
        failing_rows=[error.row for error in errors[:MAX_ROWS_SHOWN]],
        examples=[error.value for error in errors[:MAX_ROWS_SHOWN]],
    )


def _type_checks(chunk: ConformedChunk, fields: Sequence[FieldDeclaration]) -> list[CheckResult]:
    results = []
    for declared in fields:
        errors = [error for error in chunk.errors if error.field == declared.name]
        results.append(
            CheckResult(
                field=declared.name,
                rule=f"type {declared.data_type.value}",
                success=not errors,
                checked=chunk.size,
                failed=len(errors),
                failing_rows=[error.row for error in errors[:MAX_ROWS_SHOWN]],
                examples=[error.value for error in errors[:MAX_ROWS_SHOWN]],
            )
        )
    return results


def _batch_definition() -> Any:
    gx = load_great_expectations()
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX fingerprints every frame below 1 GB with a full hash only to label the batch: seconds per million rows.
    pandas_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return (
        context.data_sources.add_pandas("export")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )


def _suites(fields: Sequence[FieldDeclaration], minimum_rows: int | None) -> tuple[Any, Any]:
    """Rules each row can be judged by alone, and rules about the whole batch (over its key columns)."""
    gx = load_great_expectations()

    row_rules, batch_rules = _expectations(fields, minimum_rows)
    return (
        gx.ExpectationSuite(name="rows", expectations=row_rules),
        gx.ExpectationSuite(name="batch", expectations=batch_rules),
    )


def _details(outcome: Any) -> dict[str, Any]:
    return dict(outcome.result or {})


def _row(entry: Any) -> int:
    """GX gives {index name: row, column: value} per failing row when the frame's index is named."""
    return int(entry["row"] if isinstance(entry, dict) else entry)


def _column_suites(suite: Any) -> list[tuple[str, Any]]:
    gx = load_great_expectations()
    columns: dict[str, list[Any]] = {}
    for expectation in suite.expectations:
        columns.setdefault(expectation.column, []).append(expectation.copy(update={"id": None}))
    return [(column, gx.ExpectationSuite(name=f"{suite.name} {column}", expectations=rules))
            for column, rules in columns.items()]  # fmt: skip


def _columns_judged(suite: Any) -> set[str]:
    named: set[str] = set()
    for expectation in suite.expectations:
        named.update(name for name in [getattr(expectation, "column", None)] if name)
        named.update(getattr(expectation, "column_list", None) or [])
    return named


def _for_gx(table: pa.Table, fields: Sequence[FieldDeclaration], numbers: pd.Index) -> pd.DataFrame:
    """The table's columns as GX compares them vectorised: decimals as floats (for range checks; the text is
    published), dates and datetimes as datetime64[ns] where they fit, integers as int64 (float64 with nulls),
    nullable booleans; the row numbers as the index."""
    kinds = {declared.name: declared.data_type for declared in fields}
    columns = [_gx_column(table.column(name), kinds[name]) for name in table.column_names]
    frame = pa.Table.from_arrays(columns, names=table.column_names).to_pandas(
        types_mapper={pa.bool_(): pd.BooleanDtype()}.get
    )
    frame.index = numbers
    return frame


def _gx_column(column: pa.ChunkedArray, data_type: DataType) -> pa.ChunkedArray:
    if data_type is DataType.DECIMAL or (data_type is DataType.INTEGER and column.null_count):
        return pc.cast(column, pa.float64())  # GX compares plain int64 and float64 vectorised, nullable Int64 not
    if data_type in (DataType.DATE, DataType.DATETIME):
        low, high = pc.min_max(pc.cast(column, pa.timestamp("us"))).values()
        fits = low.as_py() is None or (NANOSECOND_RANGE[0] <= low.as_py() and high.as_py() <= NANOSECOND_RANGE[1])
        return pc.cast(column, pa.timestamp("ns" if fits else "us"))
    return column


def _expectations(fields: Sequence[FieldDeclaration], minimum_rows: int | None) -> tuple[list[Any], list[Any]]:
    """The expectations for each chunk's rows, and those for the batch as a whole (its row count unless None)."""
    import great_expectations.expectations as gxe

    from catalog.ingest.gx_checks import (
        ExpectColumnValuesToBeValidEmail,
        ExpectColumnValuesToBeValidPhone,
        ExpectColumnValuesToBeValidResidentId,
        ExpectColumnValuesToBeValidUscc,
    )

    expectations: list[Any] = []
    batch_rules: list[Any] = []

    def expect(kind: Any, field_name: str, rule: str, **kwargs: Any) -> None:
        expectations.append(kind(meta={"field": field_name, "rule": rule}, **kwargs))

    def expect_of_batch(kind: Any, field_name: str, rule: str, **kwargs: Any) -> None:
        batch_rules.append(kind(meta={"field": field_name, "rule": rule}, **kwargs))

    if minimum_rows is not None:
        expect_of_batch(gxe.ExpectTableRowCountToBeBetween, "*", "row count", min_value=minimum_rows, max_value=None)
    keys = [declared.name for declared in fields if declared.key]
    if len(keys) > 1:
        expect_of_batch(gxe.ExpectCompoundColumnsToBeUnique, "+".join(keys), "unique key", column_list=keys)
    else:
        expect_of_batch(gxe.ExpectColumnValuesToBeUnique, keys[0], "unique key", column=keys[0])
    for declared in fields:
        name = declared.name
        if not declared.nullable:
            expect(gxe.ExpectColumnValuesToNotBeNull, name, "not null", column=name)
        if declared.allowed_values is not None:
            allowed = [_bound(declared, value) for value in declared.allowed_values]
            expect(gxe.ExpectColumnValuesToBeInSet, name, "code list", column=name, value_set=allowed)
        if declared.minimum is not None or declared.maximum is not None:
            low_value, high_value = _bound(declared, declared.minimum), _bound(declared, declared.maximum)
            expect(gxe.ExpectColumnValuesToBeBetween, name, "range", column=name, min_value=low_value,
                   max_value=high_value)  # fmt: skip
        if declared.pattern is not None:
            expect(gxe.ExpectColumnValuesToMatchRegex, name, "pattern", column=name, regex=_anchored(declared.pattern))
        if declared.semantic_type is SemanticType.RESIDENT_ID:
            expect(ExpectColumnValuesToBeValidResidentId, name, "resident ID check digit", column=name)
        elif declared.semantic_type is SemanticType.USCC:
            expect(ExpectColumnValuesToBeValidUscc, name, "USCC check character", column=name)
        elif declared.semantic_type is SemanticType.PHONE:
            expect(ExpectColumnValuesToBeValidPhone, name, "phone format", column=name)
        elif declared.semantic_type is SemanticType.EMAIL:
            expect(ExpectColumnValuesToBeValidEmail, name, "e-mail format", column=name)
    return expectations, batch_rules


def _bound(declared: FieldDeclaration, text: str | None) -> Any:
    if text is None:
        return None
    value = VALUE_PARSERS.get(declared.data_type, str)(text)
    if declared.data_type in (DataType.DATE, DataType.DATETIME):
        return pd.Timestamp(value)
    if declared.data_type is DataType.DECIMAL:
        return float(value)  # compared with the decimals as floats
    return value


def _anchored(pattern: str) -> str:
    """GX searches; a declared pattern describes the whole value."""
    return f"^(?:{pattern.removeprefix('^').removesuffix('$')})$"


def _check_result(outcome: Any, fields: dict[str, FieldDeclaration]) -> CheckResult:
    meta = outcome.expectation_config.meta
    details = dict(outcome.result or {})
    declared = fields.get(meta["field"])
    rows = [_row(entry) for entry in (details.get("unexpected_index_list") or [])[:MAX_ROWS_SHOWN]]
    examples = [_example(declared, value, fields) for value in (details.get("unexpected_list") or [])[:MAX_ROWS_SHOWN]]
    error = _exception(outcome.exception_info or {})
    return CheckResult(
        field=meta["field"],
        rule=meta["rule"],
        success=bool(outcome.success) and error is None,
        checked=details.get("element_count"),
        failed=details.get("unexpected_count"),
        failing_rows=rows,
        examples=examples,
        observed=_plain(details.get("observed_value")),
        error=error,
    )


def _exception(info: dict[str, Any]) -> str | None:
    """GX reports {'raised_exception': bool, ...}, or {metric id: {...}} per failed metric."""
    # Only the exception's type: its message may quote cell values of sensitive fields.
    if "raised_exception" in info:
        return str(info.get("exception_type") or "an error in Great Expectations") if info["raised_exception"] else None
    failed = [value for value in info.values() if isinstance(value, dict)]
    return "an error in Great Expectations" if failed else None


def _example(declared: FieldDeclaration | None, value: Any, fields: dict[str, FieldDeclaration]) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dict):  # a compound key: each part masked by its own field's level
        return str({name: _example(fields.get(name), part, fields) for name, part in value.items()})
    if declared is None:
        return None
    if declared.data_type is DataType.DATE and isinstance(value, datetime):
        value = value.date()
    elif declared.data_type is DataType.INTEGER and isinstance(value, float) and value.is_integer():
        value = int(value)
    return shown_value(declared, value)


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | Decimal):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
