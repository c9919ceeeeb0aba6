"""Every ingestion outcome and every operator's decision on a quarantined batch writes its audit row in the
transaction that makes the change, as whoever triggered it, and the row holds no value of the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent
from catalog.db import session_scope
from catalog.ingest.models import IngestBatch
from catalog.ingest.publish import VersionWriter
from catalog.ingest.quarantine import discard_batch, release_batch
from catalog.ingest.service import IngestOutcome, ingest_export, run_ingest

POPULATION = "PSGA-RK-0001"
TRIGGER = "airflow:ingest_psga_rk_0001/scheduled__2026-11-21"
OPERATOR = "ops:wang"
PERSONAL_COLUMNS = (0, 1, 4)  # 公民身份号码, 姓名, 联系电话 of the population export


def run(session: Session, tmp_path: Path, data: bytes, name: str = "psga_population.csv") -> IngestOutcome:
    return ingest_export(session, POPULATION, data, name, raw_dir=tmp_path / "raw", trigger=TRIGGER)


def audit_rows(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def ingest_rows(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action.startswith("ingest."))))


def batch_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(IngestBatch)) or 0


def sample(samples_dir: Path, day: int = 20) -> bytes:
    return (samples_dir / f"psga_population_202611{day}.csv").read_bytes()


def lines_of(data: bytes) -> list[str]:
    return data.decode("utf-8-sig").splitlines()


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def with_bad_check_digit(data: bytes) -> bytes:
    lines = lines_of(data)
    cells = lines[3].split(",")
    cells[0] = cells[0][:17] + ("1" if cells[0][17] == "0" else "0")
    return csv_bytes([*lines[:3], ",".join(cells), *lines[4:]])


def cut_to(data: bytes, rows: int) -> bytes:
    return csv_bytes(lines_of(data)[: rows + 1])


def assert_no_personal_data(rows: list[AuditEvent], *exports: bytes) -> None:
    """No resident ID, name or phone number of any export, nor a masked example of one, is in a row's detail."""
    text = json.dumps([row.detail for row in rows], ensure_ascii=False)
    assert "**" not in text
    for export in exports:
        for line in lines_of(export)[1:]:
            cells = line.split(",")
            for column in PERSONAL_COLUMNS:
                assert cells[column] not in text


def test_a_publication_is_audited_as_its_trigger_for_the_items_department(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    data = sample(samples_dir)
    outcome = run(demo, tmp_path, data, "psga_population_20261120.csv")

    [row] = audit_rows(demo, "ingest.published")
    assert (row.principal, row.department, row.outcome, row.item_code) == (TRIGGER, "psga", "done", POPULATION)
    assert (row.version, row.rows) == (1, 500)
    assert row.detail == {
        "batch_id": outcome.batch_id,
        "sha256": outcome.sha256,
        "file_name": "psga_population_20261120.csv",
        "rows_read": 500,
        "rows_rejected": 0,
        "reasons": 0,
    }
    assert_no_personal_data([row], data)


def test_a_quarantine_is_audited_with_counts_and_failed_rules_never_the_reasons_texts(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    bad = with_bad_check_digit(sample(samples_dir, 21))
    outcome = run(demo, tmp_path, bad)

    assert outcome.outcome == "quarantined" and outcome.reasons
    [row] = audit_rows(demo, "ingest.quarantined")
    assert (row.principal, row.department, row.item_code, row.version, row.rows) == (
        TRIGGER,
        "psga",
        POPULATION,
        None,
        None,
    )
    assert row.detail == {
        "batch_id": outcome.batch_id,
        "sha256": outcome.sha256,
        "file_name": "psga_population.csv",
        "rows_read": 520,
        "rows_rejected": 520,
        "reasons": len(outcome.reasons),
        "failed_checks": ["公民身份号码: resident ID check digit"],
    }
    report = demo.get(IngestBatch, outcome.batch_id).report  # type: ignore[union-attr]
    assert any(example for check in report["checks"] for example in check["examples"])  # the report has some
    assert_no_personal_data([row], bad)


def test_an_export_that_cannot_be_read_is_audited_as_quarantined(demo: Session, tmp_path: Path) -> None:
    outcome = run(demo, tmp_path, b"")

    [row] = audit_rows(demo, "ingest.quarantined")
    assert row.detail["batch_id"] == outcome.batch_id and row.detail["reasons"] == 1
    assert "failed_checks" not in row.detail and row.detail["rows_read"] == 0


def test_an_unexpected_failure_is_no_quarantine_and_its_message_stays_out_of_the_audit(
    platform: Engine, tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resident_id = lines_of(sample(samples_dir))[1].split(",")[0]

    def broken_finish(self: VersionWriter) -> None:
        raise RuntimeError(f"duplicate key value ({resident_id})")  # a database message quoting a cell

    monkeypatch.setattr(VersionWriter, "finish", broken_finish)
    with pytest.raises(RuntimeError):
        run_ingest(platform, POPULATION, sample(samples_dir), "p.csv", raw_dir=tmp_path / "raw",
                   reports_dir=tmp_path / "reports", trigger=TRIGGER)  # fmt: skip

    with session_scope(platform) as session:
        [row] = ingest_rows(session)
    assert (row.action, row.outcome, row.principal, row.department) == ("ingest.failed", "failed", TRIGGER, "psga")
    assert resident_id not in json.dumps(row.detail) and "duplicate key" not in json.dumps(row.detail)


def test_the_same_export_again_is_audited_as_a_duplicate_of_its_batch(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    data = sample(samples_dir)
    first = run(demo, tmp_path, data)
    again = ingest_export(demo, POPULATION, data, "copy.csv", raw_dir=tmp_path / "raw", trigger="cli:root")

    assert again.outcome == "duplicate"
    [row] = audit_rows(demo, "ingest.duplicate")
    assert (row.principal, row.department, row.item_code, row.version) == ("cli:root", "psga", POPULATION, None)
    assert row.detail == {
        "sha256": first.sha256,
        "file_name": "copy.csv",
        "duplicate_of": first.batch_id,
        "duplicate_of_outcome": "published",
    }
    assert len(audit_rows(demo, "ingest.published")) == 1


def test_a_release_is_audited_as_the_operator_with_the_version_it_published(
    demo: Session, tmp_path: Path, samples_dir: Path
) -> None:
    run(demo, tmp_path, sample(samples_dir))
    quarantined = run(demo, tmp_path, cut_to(sample(samples_dir), 100))  # a volume drop

    released = release_batch(demo, quarantined.batch_id, OPERATOR, "census correction: the district shrank")

    [row] = audit_rows(demo, "quarantine.release")
    assert (row.principal, row.department, row.outcome, row.item_code) == (OPERATOR, None, "done", POPULATION)
    assert (row.version, row.rows) == (released.version, 100) == (2, 100)
    assert row.detail == {
        "batch_id": quarantined.batch_id,
        "reason": "census correction: the district shrank",
        "sha256": quarantined.sha256,
        "rows_read": 100,
        "rows_rejected": 0,
        "forced": False,
    }


def test_a_discard_is_audited_as_the_operator(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    quarantined = run(demo, tmp_path, with_bad_check_digit(sample(samples_dir, 21)))

    discard_batch(demo, quarantined.batch_id, OPERATOR, "the system re-exports tonight")

    [row] = audit_rows(demo, "quarantine.discard")
    assert (row.principal, row.department, row.item_code, row.version, row.rows) == (
        OPERATOR,
        None,
        POPULATION,
        None,
        None,
    )
    assert row.detail["batch_id"] == quarantined.batch_id
    assert row.detail["reason"] == "the system re-exports tonight"


def test_a_refused_decision_writes_no_audit_row(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    published = run(demo, tmp_path, sample(samples_dir))
    with pytest.raises(Exception, match="not quarantined"):
        discard_batch(demo, published.batch_id, OPERATOR, "by mistake")
    assert audit_rows(demo, "quarantine.discard") == []


@pytest.mark.parametrize("export", ["good", "bad"])
def test_the_audit_row_commits_and_rolls_back_with_the_batch(
    demo: Session, tmp_path: Path, samples_dir: Path, export: str
) -> None:
    data = sample(samples_dir) if export == "good" else with_bad_check_digit(sample(samples_dir, 21))
    demo.commit()  # the demo catalog stays; what follows is one transaction of its own

    run(demo, tmp_path, data)
    demo.rollback()  # the edge gives up (its commit failed, the task was killed ...)
    assert (batch_count(demo), ingest_rows(demo)) == (0, [])

    outcome = run(demo, tmp_path, data)
    demo.commit()
    [row] = ingest_rows(demo)
    assert (batch_count(demo), row.action, row.detail["batch_id"]) == (1, f"ingest.{outcome.outcome}", outcome.batch_id)


def test_every_batch_has_exactly_one_audit_row(demo: Session, tmp_path: Path, samples_dir: Path) -> None:
    exports = [sample(samples_dir), with_bad_check_digit(sample(samples_dir, 21)), sample(samples_dir, 21), b""]
    outcomes = [run(demo, tmp_path, data) for data in exports]

    audited = sorted(row.detail["batch_id"] for row in ingest_rows(demo))
    assert audited == sorted(outcome.batch_id for outcome in outcomes)
    assert_no_personal_data(ingest_rows(demo), *exports[:3])
