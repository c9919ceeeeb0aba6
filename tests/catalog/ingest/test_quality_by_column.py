"""Great Expectations judges a large batch column by column (each on a frame of its own) and a small one whole: the
report, its failing rows and its masked examples are the same either way."""

from __future__ import annotations

import pytest

from catalog.ingest import quality
from catalog.ingest.conform import conform
from catalog.ingest.tables import RawTable
from catalog.items.schemas import FieldDeclaration

FIELDS = [
    FieldDeclaration(name="编号", key=True, data_type="integer", level=1),  # type: ignore[arg-type]
    FieldDeclaration(name="身份证", semantic_type="resident_id", level=3, nullable=False),  # type: ignore[arg-type]
    FieldDeclaration(name="性别", allowed_values=["男", "女"], level=2),  # type: ignore[arg-type]
    FieldDeclaration(name="数量", data_type="integer", minimum="0", maximum="100", level=1),  # type: ignore[arg-type]
    FieldDeclaration(name="代码", pattern="^[A-Z][0-9]{3}$", level=1),  # type: ignore[arg-type]
    FieldDeclaration(name="金额", data_type="decimal", minimum="0", level=1),  # type: ignore[arg-type]
]
ROWS = [
    ["1", "11010519491231002X", "男", "5", "A123", "1.50"],
    ["2", "110105194912310021", "未知", "101", "a123", "-2"],  # a bad check digit, code, range, pattern, minimum
    ["2", "", "女", "x", "B001", "3"],  # a duplicate key, a missing ID, a bad integer
    ["4", "11010519491231002X", "", "", "", ""],
]


def report(monkeypatch: pytest.MonkeyPatch, by_column_from: int) -> quality.QualityReport:
    monkeypatch.setattr(quality, "COLUMN_BY_COLUMN_ROWS", by_column_from)
    table = RawTable.from_rows([field.name for field in FIELDS], ROWS)
    return quality.validate_batch(conform(table, FIELDS), FIELDS, previous_rows=None)


def test_column_by_column_and_whole_frame_say_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    by_column, whole = report(monkeypatch, 0), report(monkeypatch, 10**9)
    assert by_column.as_dict() == whole.as_dict()
    assert by_column.failing_rows == whole.failing_rows == frozenset({2, 3})
    failed = {(check.field, check.rule): check for check in by_column.checks if not check.success}
    expected = {("身份证", "resident ID check digit"), ("身份证", "not null"), ("性别", "code list"), ("数量", "range"),
                ("代码", "pattern"), ("金额", "range"), ("编号", "unique key")}  # fmt: skip
    assert set(failed) >= expected
    assert failed[("身份证", "resident ID check digit")].examples != ["110105194912310021"]  # level 3: masked
