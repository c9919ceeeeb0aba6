"""Batch quality with Great Expectations 1.x: a suite built from the item's field declarations.

Types were checked while conforming (those row errors join the report); GX checks not-null, key uniqueness
(compound keys too), code lists, ranges, patterns, resident ID and unified social credit code check
characters (custom expectations), phone and e-mail formats, and the row count against the current version.
Example values of fields at level 3 or above are masked in the report.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from catalog.classification.types import DataType, SemanticType
from catalog.ingest.conform import ConformedTable, shown_value
from catalog.items.schemas import VALUE_PARSERS, FieldDeclaration, QualityPolicy

MAX_ROWS_SHOWN = 20
PHONE_PATTERN = r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


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
    if check.error:
        return f"{check.field}: {check.rule} could not be checked: {check.error}"
    if check.failed is None:
        return f"{check.field}: {check.rule} failed (observed {check.observed})"
    rows = ", ".join(str(row) for row in check.failing_rows[:5])
    more = "…" if check.failed > 5 else ""
    return f"{check.field}: {check.rule} failed for {check.failed} row(s) (rows {rows}{more})"


def validate_batch(
    conformed: ConformedTable,
    fields: Sequence[FieldDeclaration],
    previous_rows: int | None,
    policy: QualityPolicy | None = None,
) -> QualityReport:
    policy = policy or QualityPolicy()
    checks = _type_checks(conformed, fields)
    suite_checks, failing = _run_suite(conformed.frame, fields, minimum_rows(previous_rows, policy))
    ordered = sorted([*checks, *suite_checks], key=lambda check: (check.field != "*", check.field, check.rule))
    return QualityReport(ordered, frozenset(failing | conformed.rejected_rows))


def minimum_rows(previous_rows: int | None, policy: QualityPolicy) -> int:
    """An export may shrink by at most max_volume_drop against the current version, and is never empty."""
    if not previous_rows:
        return 1
    return max(1, math.ceil(previous_rows * (1 - policy.max_volume_drop)))


def _type_checks(conformed: ConformedTable, fields: Sequence[FieldDeclaration]) -> list[CheckResult]:
    results = []
    for declared in fields:
        errors = [error for error in conformed.errors if error.field == declared.name]
        results.append(
            CheckResult(
                field=declared.name,
                rule=f"type {declared.data_type.value}",
                success=not errors,
                checked=conformed.rows_read,
                failed=len(errors),
                failing_rows=[error.row for error in errors[:MAX_ROWS_SHOWN]],
                examples=[error.value for error in errors[:MAX_ROWS_SHOWN]],
            )
        )
    return results


def _run_suite(
    frame: pd.DataFrame, fields: Sequence[FieldDeclaration], minimum_rows: int
) -> tuple[list[CheckResult], set[int]]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX fingerprints every frame below 1 GB with a full hash only to label the batch: seconds per million rows.
    pandas_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("export")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": _for_gx(frame)})
    )
    suite = gx.ExpectationSuite(name="declared", expectations=_expectations(fields, minimum_rows))
    # COMPLETE lists every failing row (the drop policy needs them all); the report keeps the first few.
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    by_name = {declared.name: declared for declared in fields}
    failing = {
        _row(entry) for outcome in result.results for entry in _details(outcome).get("unexpected_index_list") or []
    }
    return [_check_result(outcome, by_name) for outcome in result.results], failing


def _details(outcome: Any) -> dict[str, Any]:
    return dict(outcome.result or {})


def _row(entry: Any) -> int:
    """GX gives {index name: row, column: value} per failing row when the frame's index is named."""
    return int(entry["row"] if isinstance(entry, dict) else entry)


def _for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """GX compares datetime64[ns] columns vectorised and anything else row by row."""
    copy = frame.copy(deep=False)
    for name in copy.columns:
        if pd.api.types.is_datetime64_dtype(copy[name].dtype):
            copy[name] = copy[name].astype("datetime64[ns]")
    return copy


def _expectations(fields: Sequence[FieldDeclaration], minimum_rows: int) -> list[Any]:
    import great_expectations.expectations as gxe

    from catalog.ingest.gx_checks import ExpectColumnValuesToBeValidResidentId, ExpectColumnValuesToBeValidUscc

    expectations: list[Any] = []

    def expect(kind: Any, field_name: str, rule: str, **kwargs: Any) -> None:
        expectations.append(kind(meta={"field": field_name, "rule": rule}, **kwargs))

    expect(gxe.ExpectTableRowCountToBeBetween, "*", "row count", min_value=minimum_rows, max_value=None)
    keys = [declared.name for declared in fields if declared.key]
    if len(keys) > 1:
        expect(gxe.ExpectCompoundColumnsToBeUnique, "+".join(keys), "unique key", column_list=keys)
    for declared in fields:
        name = declared.name
        if not declared.nullable:
            expect(gxe.ExpectColumnValuesToNotBeNull, name, "not null", column=name)
        if declared.key and len(keys) == 1:
            expect(gxe.ExpectColumnValuesToBeUnique, name, "unique key", column=name)
        if declared.allowed_values is not None:
            allowed = [VALUE_PARSERS.get(declared.data_type, str)(value) for value in declared.allowed_values]
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
            expect(gxe.ExpectColumnValuesToMatchRegex, name, "phone format", column=name, regex=PHONE_PATTERN)
        elif declared.semantic_type is SemanticType.EMAIL:
            expect(gxe.ExpectColumnValuesToMatchRegex, name, "e-mail format", column=name, regex=EMAIL_PATTERN)
    return expectations


def _bound(declared: FieldDeclaration, text: str | None) -> Any:
    if text is None:
        return None
    value = VALUE_PARSERS[declared.data_type](text)
    if declared.data_type is DataType.DATETIME:
        return pd.Timestamp(value)
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
    error = None
    info = outcome.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message"))
    elif "raised_exception" not in info and info:
        error = "; ".join(
            sorted({str(value.get("exception_message")) for value in info.values() if isinstance(value, dict)})
        )
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
    return shown_value(declared, value)


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime | Decimal):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
