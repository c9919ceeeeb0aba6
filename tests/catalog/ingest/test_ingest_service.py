"""The ingestion path end to end on both backends: publish, idempotence, and each bad-input class
quarantined with its reason while the last good version stays current."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.errors import InvalidTransition
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import prune_versions, read_version
from catalog.ingest.quarantine import BatchNotQuarantined, discard_batch, release_batch
from catalog.ingest.service import IngestOutcome, ingest_export, quarantined_batches
from catalog.items.models import CatalogItem
from tests.catalog.helpers import conform_whole

POPULATION = "PSGA-RK-0001"


def run(session: Session, tmp_path: Path, code: str, data: bytes, name: str = "export.csv") -> IngestOutcome:
    return ingest_export(session, code, data, name, raw_dir=tmp_path / "raw", trigger="test")


def current_version(session: Session, code: str) -> ItemVersion | None:
    statement = select(ItemVersion).join(CatalogItem, CatalogItem.current_version_id == ItemVersion.id)
    return session.scalar(statement.where(CatalogItem.code == code))


def population_lines(samples_dir: Path) -> list[str]:
    return (samples_dir / "psga_population_20261121.csv").read_text(encoding="utf-8-sig").splitlines()


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("code", "name", "rows"),
    [
        (POPULATION, "psga_population_20261120.csv", 500),
        (POPULATION, "psga_population_20261121.csv", 520),
        ("SCJG-FR-0001", "scjg_enterprise_20261120.csv", 300),
        ("ZSJ-MS-0001", "zsj_complaints_20261120.json", 400),
    ],
)
def test_every_sample_export_publishes(
    demo: Session, tmp_path: Path, samples_dir: Path, code: str, name: str, rows: int
) -> None:
    data = (samples_dir / name).read_bytes()
    outcome = run(demo, tmp_path, code, data, name)

    assert (outcome.outcome, outcome.version, outcome.rows_accepted, outcome.reasons) == ("published", 1, rows, [])
    version = current_version(demo, code)
    assert version is not None and version.row_count == rows
    published = read_version(demo, version)
    assert len(published) == rows
    raw = demo.scalar(select(RawExport).where(RawExport.sha256 == outcome.sha256))
    assert raw is not None and Path(raw.stored_path).read_bytes() == data


def test_the_same_export_twice_publishes_once(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    data = (samples_dir / "psga_population_20261120.csv").read_bytes()
    first = run(demo, tmp_path, POPULATION, data)
    again = run(demo, tmp_path, POPULATION, data)

    assert (first.outcome, again.outcome, again.batch_id) == ("published", "duplicate", first.batch_id)
    current = current_version(demo, POPULATION)
    assert current is not None
    assert demo.scalar(select(ItemVersion.number).where(ItemVersion.item_id == current.item_id)) == 1
    assert len(demo.scalars(select(IngestBatch)).all()) == 1


def test_published_values_are_typed_and_in_field_order(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261121.csv").read_bytes())
    frame = read_version(demo, current_version(demo, POPULATION))  # type: ignore[arg-type]
    assert list(frame.columns)[:2] == ["公民身份号码", "姓名"]
    first = population_lines(samples_dir)[1].split(",")
    assert frame.loc[1, "公民身份号码"] == first[0]
    assert str(frame.loc[1, "出生日期"])[:10] == first[3]


def _bad_check_digit(lines: list[str]) -> list[str]:
    cells = lines[3].split(",")
    cells[0] = cells[0][:17] + ("1" if cells[0][17] == "0" else "0")
    return [*lines[:3], ",".join(cells), *lines[4:]]


def _duplicate_key(lines: list[str]) -> list[str]:
    return [*lines[:5], lines[4], *lines[6:]]


def _renamed_column(lines: list[str]) -> list[str]:
    return [lines[0].replace("联系电话", "手机号码"), *lines[1:]]


def _missing_column(lines: list[str]) -> list[str]:
    return [",".join(line.split(",")[:-1]) for line in lines]


def _volume_drop(lines: list[str]) -> list[str]:
    return lines[:101]


def _bad_date(lines: list[str]) -> list[str]:
    cells = lines[7].split(",")
    cells[3] = "1990-02-30"
    return [*lines[:7], ",".join(cells), *lines[8:]]


BAD_EXPORTS = [
    pytest.param(_bad_check_digit, "公民身份号码: resident ID check digit failed for 1 row(s) (rows 3)", id="bad-id"),
    pytest.param(_duplicate_key, "公民身份号码: unique key failed for 2 row(s) (rows 4, 5)", id="duplicate-key"),
    pytest.param(_renamed_column, "missing column(s): 联系电话; unexpected column(s): 手机号码", id="renamed-column"),
    pytest.param(_missing_column, "missing column(s): 更新时间", id="missing-column"),
    pytest.param(
        _volume_drop,
        "*: row count failed: 100 rows, below the threshold 250 (50% of the previous version's 500 rows)",
        id="volume-drop",
    ),
    pytest.param(_bad_date, "出生日期: type date failed for 1 row(s) (rows 7)", id="impossible-date"),
]


@pytest.mark.parametrize(("break_it", "reason"), BAD_EXPORTS)
def test_a_bad_export_is_quarantined_and_the_last_good_version_stays(
    demo: Session, tmp_path: Path, samples_dir: Path, break_it: object, reason: str
) -> None:
    good = run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261120.csv").read_bytes())
    lines = population_lines(samples_dir)

    outcome = run(demo, tmp_path, POPULATION, csv_bytes(break_it(lines)))  # type: ignore[operator]

    assert outcome.outcome == "quarantined"
    assert any(reason in text for text in outcome.reasons), outcome.reasons
    assert current_version(demo, POPULATION).number == good.version  # type: ignore[union-attr]
    batch = demo.get(IngestBatch, outcome.batch_id)
    assert batch is not None and batch.version_id is None
    assert Path(demo.get(RawExport, batch.raw_export_id).stored_path).exists()  # type: ignore[union-attr]


def test_masked_examples_in_the_report(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    outcome = run(demo, tmp_path, POPULATION, csv_bytes(_bad_check_digit(population_lines(samples_dir))))
    report = demo.get(IngestBatch, outcome.batch_id).report  # type: ignore[union-attr]
    failed = next(check for check in report["checks"] if check["rule"] == "resident ID check digit")
    assert failed["examples"][0].startswith("4403**********")
    assert population_lines(samples_dir)[3][:17] not in str(report)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "the export is empty", id="empty"),
        pytest.param("公民身份号码,姓名".encode("gb18030")[:-1], "does not decode", id="cut-inside-a-character"),
    ],
)
def test_unreadable_exports_are_quarantined(demo: Session, tmp_path: Path, data: bytes, reason: str) -> None:
    outcome = run(demo, tmp_path, POPULATION, data)
    assert outcome.outcome == "quarantined"
    assert reason in outcome.reasons[0]
    assert current_version(demo, POPULATION) is None


def test_gb18030_mislabelled_as_utf8_is_quarantined(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    source = demo.scalar(select(CatalogItem).where(CatalogItem.code == "SCJG-FR-0001"))
    from catalog.departments.models import SourceSystem

    demo.get(SourceSystem, source.source_system_id).encoding = "utf-8"  # type: ignore[union-attr]
    demo.flush()
    outcome = run(demo, tmp_path, "SCJG-FR-0001", (samples_dir / "scjg_enterprise_20261120.csv").read_bytes())
    assert outcome.outcome == "quarantined"
    assert "It decodes as gb18030: declare encoding gb18030 or auto" in outcome.reasons[0]


def with_policy(session: Session, code: str, **policy: object) -> None:
    item = session.scalar(select(CatalogItem).where(CatalogItem.code == code))
    assert item is not None
    item.quality = {**item.quality, **policy}
    session.flush()


def test_the_drop_policy_publishes_the_good_rows_and_reports_the_rest(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    with_policy(demo, POPULATION, bad_rows="drop", max_bad_share=0.01)
    outcome = run(demo, tmp_path, POPULATION, csv_bytes(_bad_date(_bad_check_digit(population_lines(samples_dir)))))

    assert (outcome.outcome, outcome.rows_read, outcome.rows_accepted, outcome.rows_rejected) == (
        "published",
        520,
        518,
        2,
    )
    batch = demo.get(IngestBatch, outcome.batch_id)
    assert batch is not None and batch.report["dropped_rows"] == [3, 7]
    assert (batch.rows_failed_rules, batch.rows_refused_with_batch) == (2, 0)
    published = read_version(demo, current_version(demo, POPULATION))  # type: ignore[arg-type]
    assert 3 not in published.index and 7 not in published.index and len(published) == 518


def test_the_drop_policy_quarantines_beyond_its_share(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    with_policy(demo, POPULATION, bad_rows="drop", max_bad_share=0.001)
    outcome = run(demo, tmp_path, POPULATION, csv_bytes(_bad_date(_bad_check_digit(population_lines(samples_dir)))))
    assert outcome.outcome == "quarantined"


def test_the_drop_policy_never_drops_its_way_past_a_volume_drop(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    with_policy(demo, POPULATION, bad_rows="drop", max_bad_share=1.0)
    run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261120.csv").read_bytes())
    outcome = run(demo, tmp_path, POPULATION, csv_bytes(_volume_drop(population_lines(samples_dir))))
    assert outcome.outcome == "quarantined"


def test_an_operator_releases_a_quarantined_batch_with_a_recorded_override(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261120.csv").read_bytes())
    quarantined = run(demo, tmp_path, POPULATION, csv_bytes(_volume_drop(population_lines(samples_dir))))

    released = release_batch(demo, quarantined.batch_id, "ops:wang", "census correction: the district shrank")

    assert (released.outcome, released.version, released.rows_accepted) == ("released", 2, 100)
    batch = demo.get(IngestBatch, quarantined.batch_id)
    assert batch is not None and (batch.decided_by, batch.decision_reason) == (
        "ops:wang",
        "census correction: the district shrank",
    )
    assert current_version(demo, POPULATION).number == 2  # type: ignore[union-attr]
    with pytest.raises(BatchNotQuarantined):
        discard_batch(demo, quarantined.batch_id, "ops:wang", "again")


def test_a_discarded_batch_changes_nothing_served(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    good = run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261120.csv").read_bytes())
    quarantined = run(demo, tmp_path, POPULATION, csv_bytes(_duplicate_key(population_lines(samples_dir))))

    discard_batch(demo, quarantined.batch_id, "ops:wang", "the system re-exports tonight")

    assert current_version(demo, POPULATION).number == good.version  # type: ignore[union-attr]
    assert quarantined_batches(demo, POPULATION) == []
    with pytest.raises(InvalidTransition, match="needs a reason"):
        release_batch(demo, run(demo, tmp_path, POPULATION, b"").batch_id, "ops:wang", " ")


def test_old_versions_are_dropped_after_their_retention(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    first = run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261120.csv").read_bytes())
    old = demo.scalar(select(ItemVersion).where(ItemVersion.number == first.version))
    assert old is not None
    old.published_at = old.published_at - timedelta(days=91)
    demo.flush()

    run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261121.csv").read_bytes())

    assert [v.number for v in demo.scalars(select(ItemVersion))] == [2]
    assert prune_versions(demo, current_version(demo, POPULATION).item_id, retention_days=0) == []  # type: ignore[union-attr]


def test_a_bad_uscc_check_character_is_quarantined(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    sample = samples_dir / "scjg_enterprise_20261120.csv"
    good = run(demo, tmp_path, "SCJG-FR-0001", sample.read_bytes(), sample.name)
    lines = sample.read_bytes().decode("gb18030").splitlines()
    cells = lines[2].split(",")
    cells[0] = cells[0][:17] + ("0" if cells[0][17] != "0" else "1")
    broken = "\n".join([*lines[:2], ",".join(cells), *lines[3:]]) + "\n"

    outcome = run(demo, tmp_path, "SCJG-FR-0001", broken.encode("gb18030"), sample.name)

    assert outcome.outcome == "quarantined"
    assert "统一社会信用代码: USCC check character failed for 1 row(s) (rows 2)" in outcome.reasons
    assert current_version(demo, "SCJG-FR-0001").number == good.version  # type: ignore[union-attr]


def test_an_xlsx_export_with_excel_dates_publishes(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    import io
    from datetime import date

    from openpyxl import Workbook

    from catalog.departments.models import SourceSystem

    item = demo.scalar(select(CatalogItem).where(CatalogItem.code == "SCJG-FR-0001"))
    demo.get(SourceSystem, item.source_system_id).format = "xlsx"  # type: ignore[union-attr]
    demo.flush()
    lines = (samples_dir / "scjg_enterprise_20261120.csv").read_bytes().decode("gb18030").splitlines()
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(lines[0].split(","))
    for number, line in enumerate(lines[1:]):
        cells: list[object] = list(line.split(","))
        founded = date.fromisoformat(str(cells[3]))
        # half the dates as date cells, half as the Excel serial numbers some systems write
        cells[3] = founded if number % 2 else (founded - date(1899, 12, 30)).days
        cells[4] = float(str(cells[4]))
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)

    outcome = run(demo, tmp_path, "SCJG-FR-0001", buffer.getvalue(), "scjg_enterprise_20261120.xlsx")

    assert (outcome.outcome, outcome.rows_accepted) == ("published", 300)
    published = read_version(demo, current_version(demo, "SCJG-FR-0001"))  # type: ignore[arg-type]
    assert [str(published.loc[row, "成立日期"])[:10] for row in (1, 2)] == [
        lines[1].split(",")[3],
        lines[2].split(",")[3],
    ]


def test_releasing_a_batch_older_than_the_current_version_needs_force(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    quarantined = run(demo, tmp_path, POPULATION, csv_bytes(_duplicate_key(population_lines(samples_dir))))
    newer = run(demo, tmp_path, POPULATION, (samples_dir / "psga_population_20261121.csv").read_bytes())
    batch = demo.get(IngestBatch, quarantined.batch_id)
    assert batch is not None and newer.version == 1

    with pytest.raises(InvalidTransition, match="version 1 of PSGA-RK-0001 was published after batch"):
        release_batch(demo, quarantined.batch_id, "ops:wang", "late fix")
    assert release_batch(demo, quarantined.batch_id, "ops:wang", "late fix", force=True).version == 2


def test_a_value_beyond_the_integer_range_is_a_row_error() -> None:
    from catalog.ingest.tables import RawTable
    from catalog.items.schemas import FieldDeclaration

    number = FieldDeclaration(name="n", key=True, data_type="integer", level=1)  # type: ignore[arg-type]
    conformed = conform_whole(RawTable.from_rows(["n"], [["99999999999999999999"], ["12"]]), [number])
    assert [(error.row, error.message) for error in conformed.errors] == [(1, "not an integer")]


def test_a_compound_key_report_masks_each_sensitive_part(session: Session, tmp_path: Path) -> None:
    from catalog.ingest.conform import conform
    from catalog.ingest.quality import validate_batch
    from catalog.ingest.tables import RawTable
    from catalog.items.schemas import FieldDeclaration

    fields = [
        FieldDeclaration(name="证件号码", key=True, semantic_type="resident_id", level=3),  # type: ignore[arg-type]
        FieldDeclaration(name="年度", key=True, data_type="integer", level=1),  # type: ignore[arg-type]
    ]
    table = RawTable.from_rows(["证件号码", "年度"], [["11010519491231002X", "2025"], ["11010519491231002X", "2025"]])
    report = validate_batch(conform(table, fields), fields, previous_rows=None)

    key_check = next(check for check in report.checks if check.rule == "unique key")
    assert not key_check.success and key_check.failing_rows == [1, 2]
    assert "11010519491231002X" not in str(report.as_dict())
    assert "1101**********002X" in str(key_check.examples)


def test_dropping_rows_never_publishes_below_the_volume_floor(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    lines = population_lines(samples_dir)
    run(demo, tmp_path, POPULATION, csv_bytes(lines[:201]))  # version 1: 200 rows
    with_policy(demo, POPULATION, bad_rows="drop", max_bad_share=1.0, max_volume_drop=0.5)
    broken = [lines[0], *[line.replace(",女,", ",未知,").replace(",男,", ",未知,") for line in lines[1:111]]]
    broken = [*broken[:51], *lines[51:111]][:111]  # 110 rows, 50 of them with a bad code: 60 good < 100 floor

    outcome = run(demo, tmp_path, POPULATION, csv_bytes(broken))

    assert outcome.outcome == "quarantined"
    assert current_version(demo, POPULATION).number == 1  # type: ignore[union-attr]
