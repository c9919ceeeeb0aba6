"""Exports read in many small chunks behave exactly like exports read at once: row numbers, rules about the
whole batch (key uniqueness, row count), the drop policy; and the two ways of parsing a cell agree."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlalchemy.orm import Session

from catalog.classification.types import DataType
from catalog.ingest import conform, tables
from catalog.ingest.publish import read_version
from catalog.items.schemas import FieldDeclaration
from tests.catalog.ingest.test_ingest_service import (
    POPULATION,
    csv_bytes,
    current_version,
    population_lines,
    run,
    with_policy,
)

DATES = [
    "2023-02-28", "2023-02-30", "2024-02-29", "2023-02-29", "2023-2-3", "2023/1/5", "2023.01.05", "20230115",
    "2023年1月5日", "0000-01-01", "9999-12-31", "10000-01-01", "2023-13-01", "2023-00-10", "2023-01-00",
    "23-01-05", "2023-01-05 ", " 2023-01-05", "2023-01-05x", "bad", "", "２０２３-01-05",
]  # fmt: skip
DATETIMES = [
    "2023-02-28 12:30:15", "2023-02-30 12:30:15", "2023-02-28 24:00:00", "2023-02-28 23:60:00",
    "2023-02-28 12:30:60", "2023-02-28 12:30", "2023-02-28T12:30:15", "2023/02/28 01:02:03", "20230228010203",
    "2023-02-28", "2023-02-28 12:30:15.5", "2023-02-28 12:30:15.123456", "2023-2-8 1:2:3", "0000-01-01 00:00:00",
    "x", "",
]  # fmt: skip


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """About 80 rows per CSV chunk and 60 per JSON chunk, so a sample export spans several chunks."""
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", 8192)
    monkeypatch.setattr(tables, "CHUNK_ROWS", 60)


def by_patterns_only(parse: object, text: list[str]) -> list[object]:
    """What the slow path alone makes of each cell (the fast path must never disagree with it)."""
    array = pc.utf8_trim_whitespace(pa.array(text, pa.string()))
    if parse is conform._parse_date:
        values, ok = conform._days_from(conform._first_match(array, conform.DATE_PATTERNS))
        return [
            date(1970, 1, 1) + np.timedelta64(int(v), "D").item() if good else None
            for v, good in zip(values, ok, strict=True)
        ]
    values, ok = conform._micros_from(conform._first_match(array, conform.DATETIME_PATTERNS))
    return [
        datetime(1970, 1, 1) + np.timedelta64(int(v), "us").item() if good else None
        for v, good in zip(values, ok, strict=True)
    ]


@pytest.mark.parametrize(("parse", "cells"), [(conform._parse_date, DATES), (conform._parse_datetime, DATETIMES)])
def test_the_usual_layout_fast_path_agrees_with_the_patterns(parse: object, cells: list[str]) -> None:
    values, bad = parse(pc.utf8_trim_whitespace(pa.array(cells, pa.string())))  # type: ignore[operator]
    assert values.to_pylist() == by_patterns_only(parse, cells)
    assert [cell for cell, failed in zip(cells, bad, strict=True) if failed] == [
        cell for cell, value in zip(cells, values.to_pylist(), strict=True) if value is None and cell.strip()
    ]
    assert values.to_pylist()[DATES.index("2023-02-30") if parse is conform._parse_date else 1] is None


@pytest.mark.parametrize(
    ("data_type", "cells"),
    [
        (DataType.INTEGER, ["12", "+5", "-3", "1,234", "9223372036854775807", "9223372036854775808", "1.5", "x", ""]),
        (DataType.DECIMAL, ["1.50", "1,234.5", ".5", "1e3", "-0", "NaN", "inf", "1.2.3", ""]),
        (DataType.DATE, DATES),
        (DataType.DATETIME, DATETIMES),
        (DataType.BOOLEAN, ["true", "False", "1", "0", "是", "否", "y", "N", "maybe", ""]),
        (DataType.STRING, ["  a  ", "", "   ", "陈华"]),
    ],
)
def test_text_cells_parse_the_same_from_csv_and_from_json(data_type: DataType, cells: list[str]) -> None:
    from_csv = conform.TEXT_PARSERS[data_type](pc.utf8_trim_whitespace(pa.array(cells, pa.string())))
    declaration = FieldDeclaration(name="f", data_type=data_type, level=1)
    from_json = conform._conform_cells(list(cells), declaration)
    assert from_csv[0].to_pylist() == from_json[0].to_pylist()
    assert from_csv[1].tolist() == from_json[1].tolist()


def test_a_sample_in_many_chunks_publishes_every_row(
    small_chunks: None, demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    lines = population_lines(samples_dir)
    assert len(list(tables.read_csv(csv_bytes(lines)).chunks)) > 5

    outcome = run(demo, tmp_path, POPULATION, csv_bytes(lines))

    assert (outcome.outcome, outcome.rows_read, outcome.rows_accepted) == ("published", 520, 520)
    published = read_version(demo, current_version(demo, POPULATION))  # type: ignore[arg-type]
    assert list(published.index) == list(range(1, 521))
    assert published.loc[500, "公民身份号码"] == lines[500].split(",")[0]


def test_a_key_repeated_in_another_chunk_is_found_with_both_rows(
    small_chunks: None, demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    lines = population_lines(samples_dir)
    lines[480] = lines[2]  # data row 480 repeats data row 2, hundreds of rows and many chunks later

    outcome = run(demo, tmp_path, POPULATION, csv_bytes(lines))

    assert outcome.outcome == "quarantined"
    assert "公民身份号码: unique key failed for 2 row(s) (rows 2, 480)" in outcome.reasons
    assert current_version(demo, POPULATION) is None


def test_bad_rows_in_late_chunks_are_named_and_dropped_by_their_numbers(
    small_chunks: None, demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    with_policy(demo, POPULATION, bad_rows="drop", max_bad_share=0.01)
    lines = population_lines(samples_dir)
    for row in (300, 517):
        cells = lines[row].split(",")
        cells[3] = "1990-02-30"
        lines[row] = ",".join(cells)

    outcome = run(demo, tmp_path, POPULATION, csv_bytes(lines))

    assert (outcome.outcome, outcome.rows_accepted, outcome.rows_rejected) == ("published", 518, 2)
    published = read_version(demo, current_version(demo, POPULATION))  # type: ignore[arg-type]
    assert {300, 517}.isdisjoint(published.index) and len(published) == 518


def test_json_lines_in_many_chunks(small_chunks: None, demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    data = (samples_dir / "zsj_complaints_20261120.json").read_bytes()
    assert len(list(tables.read_json(data).chunks)) > 5

    outcome = run(demo, tmp_path, "ZSJ-MS-0001", data, "complaints.json")

    assert (outcome.outcome, outcome.rows_accepted) == ("published", 400)


def test_decimals_are_published_exactly_on_both_backends(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    lines = (samples_dir / "scjg_enterprise_20261120.csv").read_bytes().decode("gb18030").splitlines()
    header = lines[0].split(",")
    capital = header.index("注册资本万元")
    cells = lines[1].split(",")
    cells[capital] = "12345678901234567.891234567"  # beyond a binary float's 15-17 significant digits
    lines[1] = ",".join(cells)

    outcome = run(demo, tmp_path, "SCJG-FR-0001", "\n".join(lines).encode("gb18030"), "enterprise.csv")

    assert outcome.outcome == "published", outcome.reasons
    published = read_version(demo, current_version(demo, "SCJG-FR-0001"))  # type: ignore[arg-type]
    assert published.loc[1, "注册资本万元"] == Decimal("12345678901234567.891234567")


def test_json_typed_cells_keep_their_types() -> None:
    records = [{"n": 1, "d": 1.25, "b": True, "s": 440307.0}, {"n": 2.0, "d": "3", "b": 0, "s": "x"}]
    table = tables.read_json(json.dumps(records))
    fields = [
        FieldDeclaration(name="n", data_type=DataType.INTEGER, key=True, level=1),
        FieldDeclaration(name="d", data_type=DataType.DECIMAL, level=1),
        FieldDeclaration(name="b", data_type=DataType.BOOLEAN, level=1),
        FieldDeclaration(name="s", level=1),
    ]
    [chunk] = list(conform.conform(table, fields))
    assert chunk.errors == []
    assert chunk.table.to_pylist() == [
        {"n": 1, "d": "1.25", "b": True, "s": "440307"},
        {"n": 2, "d": "3", "b": False, "s": "x"},
    ]
