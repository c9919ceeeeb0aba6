from __future__ import annotations

import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from openpyxl import Workbook

from catalog.classification.types import DataType
from catalog.ingest.conform import conform
from catalog.ingest.decode import decode_export, decode_file
from catalog.ingest.errors import ExportNotReadable, SchemaDrift
from catalog.ingest.tables import RawTable, read_csv, read_json, read_xlsx
from catalog.items.schemas import FieldDeclaration
from tests.catalog.helpers import conform_whole, demo_file


def fields_of(code: str) -> list[FieldDeclaration]:
    return next(item for item in demo_file().items if item.code == code).fields


def sample_table(samples_dir: Path, name: str) -> RawTable:
    utf8 = decode_export((samples_dir / name).read_bytes()).utf8
    return read_json(utf8) if name.endswith(".json") else read_csv(utf8)


@pytest.mark.parametrize(
    ("name", "code", "rows"),
    [
        ("psga_population_20261120.csv", "PSGA-RK-0001", 500),
        ("psga_population_20261121.csv", "PSGA-RK-0001", 520),
        ("scjg_enterprise_20261120.csv", "SCJG-FR-0001", 300),
        ("zsj_complaints_20261120.json", "ZSJ-MS-0001", 400),
    ],
)
def test_every_sample_conforms_to_its_demo_item(samples_dir: Path, name: str, code: str, rows: int) -> None:
    conformed = conform_whole(sample_table(samples_dir, name), fields_of(code))

    assert conformed.errors == []
    assert conformed.rows_read == rows
    assert list(conformed.frame.columns) == [field.name for field in fields_of(code)]


def sample_frame(samples_dir: Path, name: str, code: str) -> pd.DataFrame:
    return conform_whole(sample_table(samples_dir, name), fields_of(code)).frame


def test_values_are_typed(samples_dir: Path) -> None:
    population = sample_frame(samples_dir, "psga_population_20261120.csv", "PSGA-RK-0001")
    first = (samples_dir / "psga_population_20261120.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    assert population.loc[1, "公民身份号码"] == first[0]
    assert population.loc[1, "出生日期"] == date.fromisoformat(first[3])
    assert population.loc[1, "更新时间"] == datetime(2026, 11, 20, 2, 0)

    enterprise = sample_frame(samples_dir, "scjg_enterprise_20261120.csv", "SCJG-FR-0001")
    first = (samples_dir / "scjg_enterprise_20261120.csv").read_text(encoding="gb18030").splitlines()[1].split(",")
    assert enterprise.loc[1, "注册资本万元"] == first[4]  # decimals keep their text until published
    assert enterprise.loc[1, "企业名称"] == first[1]

    complaints = sample_frame(samples_dir, "zsj_complaints_20261120.json", "ZSJ-MS-0001")
    records = json.loads((samples_dir / "zsj_complaints_20261120.json").read_text(encoding="utf-8"))
    open_cases = complaints[complaints["状态"] == "处置中"]
    assert len(open_cases) == sum(record["状态"] == "处置中" for record in records) > 0
    assert open_cases["办结时间"].isna().all()


def test_a_renamed_column_is_schema_drift_naming_both(samples_dir: Path) -> None:
    text = decode_export((samples_dir / "psga_population_20261120.csv").read_bytes()).text
    renamed = text.replace("联系电话", "手机号码", 1)
    with pytest.raises(SchemaDrift, match=r"missing column.s.: 联系电话; unexpected column.s.: 手机号码"):
        conform(read_csv(renamed), fields_of("PSGA-RK-0001"))  # at once, before any row is read


def test_a_truncated_csv_names_the_row(samples_dir: Path) -> None:
    text = decode_export((samples_dir / "psga_population_20261120.csv").read_bytes()).text
    cut = text[: text.index("\n", 5000) - 40]  # inside the address, two values short
    with pytest.raises(ExportNotReadable, match=r"row \d+ \(line \d+\) has \d values where the header has 8 columns"):
        list(read_csv(cut).chunks)  # rows are read as the chunks are consumed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,a\n1,2,3\n", "names column.s. more than once: a"),
        ("", "no header row"),
        ('a,b\n"unclosed,2\n', "malformed"),
    ],
)
def test_malformed_csv(text: str, message: str) -> None:
    with pytest.raises(ExportNotReadable, match=message):
        list(read_csv(text).chunks)


def test_bad_values_become_row_errors_with_sensitive_values_masked() -> None:
    table = RawTable.from_rows(
        ["公民身份号码", "姓名", "性别", "出生日期", "联系电话", "户籍地址", "所属社区", "更新时间"],
        [
            ["440307195307144048", "陈华", "女", "1953-07-14", "17083016613", "深圳市", "江岭社区", "2026-11-20 02:00"],
            ["440307195307144048", "陈华", "女", "1953-13-14", "17083016613", "深圳市", "江岭社区", "yesterday"],
            [
                "440307195307144048",
                "陈华",
                "女",
                "19530714",
                "17083016613",
                "深圳市",
                "江岭社区",
                "2026/11/20 02:00:00",
            ],
        ],
    )
    conformed = conform_whole(table, fields_of("PSGA-RK-0001"))

    assert [(e.row, e.field, e.value) for e in conformed.errors] == [
        (2, "出生日期", "**********"),  # level 3: masked by its rule (redact)
        (2, "更新时间", "yesterday"),  # level 1: shown
    ]
    assert conformed.errors[0].message.startswith("not a date")
    assert conformed.rejected_rows == {2}
    assert conformed.frame.loc[3, "出生日期"] == date(1953, 7, 14)
    assert conformed.frame.loc[3, "更新时间"] == datetime(2026, 11, 20, 2, 0)


def test_json_lines_and_missing_keys() -> None:
    lines = "\n".join(json.dumps(record, ensure_ascii=False) for record in [{"a": 1, "b": "x"}, {"a": 2}])
    table = read_json(lines + "\n")
    assert table.columns == ["a", "b"]
    assert [chunk.columns for chunk in table.chunks] == [[[1, 2], ["x", None]]]
    with pytest.raises(ExportNotReadable, match="line 2 is not JSON"):
        read_json('{"a": 1}\n{"a": \n')
    with pytest.raises(ExportNotReadable, match="record 1 is not a JSON object"):
        read_json("[1, 2]")


def test_xlsx_with_excel_dates_and_serials() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["统一社会信用代码", "企业名称", "法定代表人", "成立日期", "注册资本万元", "经营状态", "所属街道"])
    sheet.append(
        ["91440310WNJWB19Y9B", "深圳市孙敏杰科技有限公司", "董军", date(2002, 4, 19), 49457.17, "存续", "石井街道"]
    )
    sheet.append(["914403100T57LYK307", "深圳市袁宏艳科技有限公司", "王力娜", 38205, 41757.95, "吊销", "坪山街道"])
    sheet.append([None] * 7)
    buffer = io.BytesIO()
    workbook.save(buffer)

    conformed = conform_whole(read_xlsx(buffer.getvalue()), fields_of("SCJG-FR-0001"))

    assert conformed.errors == []
    assert conformed.rows_read == 2
    assert list(conformed.frame["成立日期"]) == [date(2002, 4, 19), date(2004, 8, 6)]  # serial 38205 = 2004-08-06
    assert Decimal(conformed.frame.loc[1, "注册资本万元"]) == Decimal("49457.17")


def test_a_file_that_is_not_xlsx() -> None:
    with pytest.raises(ExportNotReadable, match="cannot be opened"):
        read_xlsx(b"PK\x03\x04 not really a zip")


@pytest.mark.parametrize(
    ("data_type", "cells"),
    [
        ("datetime", ["2024-02-29 23:59:59", "1900-01-01 00:00:00", "9999-12-31 23:59:59", "0001-01-01 00:00:00"]),
        ("datetime", ["2024-02-29 23:59:59", "2026-02-29 10:00:00"]),  # no 29 February in 2026
        ("datetime", ["2026-02-28 24:00:00", "2026-02-28 10:00:00"]),
        ("datetime", ["2026-02-28 10:60:00", "2026-02-28 10:00:60"]),
        ("datetime", ["0000-01-01 00:00:00", "2026-01-01 00:00:00"]),  # no year 0
        ("date", ["2024-02-29", "1900-01-01", "9999-12-31", "0001-01-01"]),
        ("date", ["2024-02-29", "2026-02-30", "0000-12-01", "2026-13-01"]),
    ],
)
def test_a_column_all_in_the_usual_layout_parses_as_cell_by_cell(data_type: str, cells: list[str]) -> None:
    """Such a column is cast by Arrow at once; each cell alone goes the careful way: the values and errors agree."""
    field = FieldDeclaration(name="时间", data_type=DataType(data_type), level=1)

    def conformed(rows: list[str]) -> tuple[list[object], list[int]]:
        (chunk,) = conform(read_csv("时间\n" + "".join(f"{row}\n" for row in rows)), [field])
        return chunk.table.column("时间").to_pylist(), [error.row for error in chunk.errors]

    one_by_one = [conformed([cell, "x"]) for cell in cells]  # "x" sends the column the careful way
    assert conformed(cells) == (
        [values[0] for values, _ in one_by_one],
        [number for number, (_, errors) in enumerate(one_by_one, 1) if 1 in errors],
    )


@pytest.mark.parametrize(
    "text",
    ['\ufeff姓名,地址\n陈华,坪山\n李娜,"马峦\n街道"\n', "姓名,地址\n陈华,坪山\n李娜,马峦,多余\n", "姓名,姓名\n1,2\n"],
)
def test_a_csv_file_reads_as_its_bytes_do(text: str, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(text.encode("utf-8"))

    def read(source: object) -> object:
        try:
            table = read_csv(source)  # type: ignore[arg-type]
            return table.columns, [[pa.array(column).to_pylist() for column in chunk.columns] for chunk in table.chunks]
        except ExportNotReadable as error:
            return error.message

    assert read(decode_file(path)) == read(decode_export(path.read_bytes()).utf8)
