"""Ingestion runs as the edges run them (``run_ingest``): the run's record commits before its work, an unexpected
error fails the run (logged with its traceback, re-raised, retried for real) while only problems with the data
quarantine, a killed run is found interrupted, a non-published item is refused, and every failing row is kept."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from catalog.audit.models import AuditEvent
from catalog.db import READ_ONLY, session_scope, utcnow
from catalog.ingest import runs
from catalog.ingest.models import IngestBatch, ItemVersion, RawExport
from catalog.ingest.publish import VersionWriter
from catalog.ingest.service import IngestInProgress, IngestOutcome, ItemNotPublished, ingest_export, run_ingest
from catalog.items.models import CatalogItem
from tests.catalog.helpers import import_demo

POPULATION = "PSGA-RK-0001"
REPOSITORY = Path(__file__).resolve().parents[3]


def ingest(engine: Engine, work: Path, data: bytes, name: str = "psga_population.csv") -> IngestOutcome:
    return run_ingest(engine, POPULATION, data, name, raw_dir=work / "raw", reports_dir=work / "reports",
                      trigger="test")  # fmt: skip


def sample(samples_dir: Path) -> bytes:
    return (samples_dir / "psga_population_20261121.csv").read_bytes()


def drifted() -> bytes:
    return "公民身份号码,姓名\n440307195307144048,陈华\n".encode()


def batches(engine: Engine) -> list[IngestBatch]:
    """Read without taking SQLite's write lock, which a stalled run holds."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as connection, Session(bind=connection) as session:
        return list(session.scalars(select(IngestBatch).order_by(IngestBatch.id)))


def count(engine: Engine, model: type[Any]) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def audit_actions(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith("ingest.")).order_by(AuditEvent.id)
        )
        return [(row.action, row.detail) for row in rows]


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    result = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(result.stdout)


def add_running_batch(engine: Engine, host: str, pid: int, started_hours_ago: float = 0) -> int:
    """A running record as a run leaves it when its process dies before finishing."""
    with session_scope(engine) as session:
        item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
        digest = secrets.token_hex(32)
        raw = RawExport(item_id=item_id, sha256=digest, file_name="killed.csv", size_bytes=1, stored_path="/x")
        session.add(raw)
        session.flush()
        batch = IngestBatch(
            item_id=item_id, raw_export_id=raw.id, outcome="running", trigger="test", host=host, pid=pid,
            started_at=utcnow() - timedelta(hours=started_hours_ago), reasons=[], report={},
        )  # fmt: skip
        session.add(batch)
        session.flush()
        return batch.id


# --- 8: an item that is not published ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["retired", "draft"])
def test_an_item_that_is_not_published_is_refused_before_anything_is_kept(
    platform: Engine, tmp_path: Path, samples_dir: Path, status: str
) -> None:
    with session_scope(platform) as session:
        session.execute(update(CatalogItem).where(CatalogItem.code == POPULATION).values(status=status))

    with pytest.raises(ItemNotPublished, match=f"{POPULATION} is {status}, not published"):
        ingest(platform, tmp_path, sample(samples_dir))

    assert (count(platform, RawExport), count(platform, IngestBatch), audit_actions(platform)) == (0, 0, [])
    assert files_under(tmp_path) == []


def test_an_item_retired_while_its_export_is_processed_gets_no_new_version(
    platform: Engine, backend: str, tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: a retirement waits until the run has committed")
    staged = VersionWriter.delete_rows

    def retired_meanwhile(writer: VersionWriter, rows: Any) -> Any:  # a steward retires the item as the run works
        with session_scope(platform) as session:
            session.execute(update(CatalogItem).where(CatalogItem.code == POPULATION).values(status="retired"))
        return staged(writer, rows)

    monkeypatch.setattr(VersionWriter, "delete_rows", retired_meanwhile)
    with pytest.raises(ItemNotPublished, match="retired while"):
        ingest(platform, tmp_path, sample(samples_dir))

    assert count(platform, ItemVersion) == 0
    (record,) = batches(platform)
    assert record.outcome == runs.FAILED and "retired while" in record.reasons[0]


# --- 10: unexpected errors fail (and are retried); data problems quarantine -----------------------------------


def test_an_unexpected_error_fails_the_run_with_its_traceback_and_a_retry_publishes(
    platform: Engine, tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    data = sample(samples_dir)
    resident_id = data.decode("utf-8-sig").splitlines()[1].split(",")[0]

    def lost_connection(self: VersionWriter) -> None:
        raise RuntimeError(f"server closed the connection (while writing {resident_id})")

    monkeypatch.setattr(VersionWriter, "finish", lost_connection)
    with caplog.at_level(logging.ERROR, logger="catalog.ingest.service"), pytest.raises(RuntimeError):
        ingest(platform, tmp_path, data)

    [logged] = [record for record in caplog.records if record.name == "catalog.ingest.service"]
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError  # the traceback is logged
    [failed] = batches(platform)
    assert (failed.outcome, failed.version_id, failed.host, failed.pid) == ("failed", None, runs.this_process()[0],
                                                                           os.getpid())  # fmt: skip
    assert failed.finished_at is not None and "RuntimeError" in failed.reasons[0]
    assert resident_id not in json.dumps(failed.reasons)
    assert [action for action, _ in audit_actions(platform)] == ["ingest.failed"]
    assert resident_id not in json.dumps(audit_actions(platform), ensure_ascii=False)
    assert count(platform, ItemVersion) == 0
    with session_scope(platform) as session:
        raw = session.get_one(RawExport, failed.raw_export_id)
    assert files_under(tmp_path / "raw") == [Path(raw.stored_path)]  # the raw file, with its record

    monkeypatch.undo()
    retried = ingest(platform, tmp_path, data)  # the same export: ingested for real, not a duplicate of a failure

    assert (retried.outcome, retried.version, retried.rows_accepted) == ("published", 1, 520)
    assert [batch.outcome for batch in batches(platform)] == ["failed", "published"]


def test_in_the_callers_transaction_an_unexpected_error_propagates_and_quarantines_nothing(
    session: Session, tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_demo(session)

    def bug(self: VersionWriter) -> None:
        raise KeyError("f3")

    monkeypatch.setattr(VersionWriter, "finish", bug)
    with pytest.raises(KeyError):
        ingest_export(session, POPULATION, sample(samples_dir), "p.csv", raw_dir=tmp_path / "raw", trigger="test")
    session.rollback()
    assert session.scalars(select(IngestBatch).where(IngestBatch.outcome == "quarantined")).all() == []


def test_a_data_problem_quarantines_and_running_the_export_again_says_it_awaits_an_operator(
    platform: Engine, tmp_path: Path
) -> None:
    first = ingest(platform, tmp_path, drifted())
    again = ingest(platform, tmp_path, drifted())

    assert (first.outcome, first.awaits_operator) == ("quarantined", True)
    assert "missing column(s)" in first.reasons[0]
    assert (again.outcome, again.batch_id, again.duplicate_of_outcome, again.awaits_operator) == (
        "duplicate",
        first.batch_id,
        "quarantined",
        True,
    )
    assert [batch.outcome for batch in batches(platform)] == ["quarantined"]


# --- 11: a run's record exists from its start; a killed run is found interrupted ------------------------------

STALLING_RUN = """
import sys, time
from pathlib import Path
from catalog.db import make_engine
from catalog.ingest.models import RawExport
from catalog.ingest.publish import VersionWriter
from catalog.ingest.service import run_ingest

url, export, work, ready = sys.argv[1:]
def stall(self):  # the export is staged and its raw file kept: wait here to be killed
    stored = self._session.query(RawExport).one().stored_path
    while not Path(stored).exists():
        time.sleep(0.01)
    Path(ready).touch()
    time.sleep(600)
VersionWriter.finish = stall
run_ingest(make_engine(url), "PSGA-RK-0001", Path(export).read_bytes(), "psga.csv", raw_dir=Path(work) / "raw",
           reports_dir=Path(work) / "reports", trigger="test:killed")
"""


def test_a_killed_run_is_found_interrupted_and_the_next_run_ingests_its_export(
    platform: Engine, tmp_path: Path, samples_dir: Path
) -> None:
    ready = tmp_path / "ready"
    export = samples_dir / "psga_population_20261121.csv"
    url = platform.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", STALLING_RUN, url, str(export), str(tmp_path), str(ready)], cwd=REPOSITORY
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the run never reached its publication"
        [running] = batches(platform)  # committed before the work
        assert (running.outcome, running.pid, running.finished_at) == ("running", process.pid, None)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    with session_scope(platform) as session:
        raw = session.get_one(RawExport, running.raw_export_id)
        assert runs.run_records(session)[0]["outcome"] == "running"  # until someone looks whether it is alive
        assert runs.settle_dead_runs(session) == [running.id]
        assert runs.run_records(session)[0]["outcome"] == "interrupted"
    assert Path(raw.stored_path).read_bytes() == export.read_bytes()
    assert files_under(tmp_path / "raw") == [Path(raw.stored_path)]
    assert count(platform, ItemVersion) == 0

    again = ingest(platform, tmp_path, export.read_bytes())

    assert (again.outcome, again.rows_accepted) == ("published", 520)
    assert [batch.outcome for batch in batches(platform)] == ["interrupted", "published"]


def test_a_run_going_refuses_a_second_one_and_a_dead_or_overdue_one_is_interrupted(
    platform: Engine, tmp_path: Path, samples_dir: Path
) -> None:
    host, pid = runs.this_process()
    alive = add_running_batch(platform, host, pid)
    with pytest.raises(IngestInProgress, match=f"being ingested as batch {alive} .*pid {pid}"):
        ingest(platform, tmp_path, sample(samples_dir))

    with session_scope(platform) as session:
        session.execute(update(IngestBatch).values(outcome="published", finished_at=utcnow()))
    dead = add_running_batch(platform, host, dead_pid())
    elsewhere_recent = add_running_batch(platform, "another-host", 1, started_hours_ago=1)
    with session_scope(platform) as session:
        assert runs.settle_dead_runs(session, stale_after=timedelta(hours=6)) == [dead]
        assert runs.settle_dead_runs(session, stale_after=timedelta(minutes=30)) == [elsewhere_recent]
    assert {batch.id: batch.outcome for batch in batches(platform)}[dead] == "interrupted"
    assert "ended before it finished" in next(batch for batch in batches(platform) if batch.id == dead).reasons[0]


# --- 13: every failing row, failed rules apart from refused rows, the file named ------------------------------


def with_bad_codes(data: bytes, rows: range) -> bytes:
    lines = data.decode("utf-8-sig").splitlines()
    for row in rows:
        lines[row] = lines[row].replace(",女,", ",未知,").replace(",男,", ",未知,")
    return ("\n".join(lines) + "\n").encode()


def test_every_failing_row_is_kept_and_the_record_tells_failed_rows_from_refused_ones(
    platform: Engine, tmp_path: Path, samples_dir: Path
) -> None:
    bad = with_bad_codes(sample(samples_dir), range(1, 61))  # 60 rows with a code outside the list

    outcome = ingest(platform, tmp_path, bad, "psga_population_20261122.csv")

    assert outcome.outcome == "quarantined"
    with session_scope(platform) as session:
        [record] = runs.run_records(session)
        batch = session.get_one(IngestBatch, outcome.batch_id)
        shown = next(check for check in batch.report["checks"] if check["rule"] == "code list")
    assert (record["file_name"], record["rows_read"], record["rows_rejected"]) == ("psga_population_20261122.csv",
                                                                                  520, 520)  # fmt: skip
    assert (record["rows_failed_rules"], record["rows_refused_with_batch"]) == (60, 460)
    assert (shown["failed"], len(shown["failing_rows"])) == (60, 20)  # the report shows the first few
    with gzip.open(str(batch.failing_rows_path), "rt", encoding="utf-8") as text:
        kept = list(csv.DictReader(text))
    assert [(int(row["row"]), row["field"], row["rule"]) for row in kept] == [(n, "性别", "code list") for n in
                                                                              range(1, 61)]  # fmt: skip


def test_the_row_count_failure_states_its_threshold_and_the_previous_count(
    platform: Engine, tmp_path: Path, samples_dir: Path
) -> None:
    ingest(platform, tmp_path, sample(samples_dir))
    lines = sample(samples_dir).decode("utf-8-sig").splitlines()

    outcome = ingest(platform, tmp_path, ("\n".join(lines[:101]) + "\n").encode())

    assert "*: row count failed: 100 rows, below the threshold 260 (50% of the previous version's 520 rows)" in (
        outcome.reasons
    )
    with session_scope(platform) as session:
        batch = session.get_one(IngestBatch, outcome.batch_id)
    assert (batch.rows_failed_rules, batch.rows_refused_with_batch, batch.failing_rows_path) == (0, 100, None)


def test_the_failing_rows_read_back_as_csv(tmp_path: Path) -> None:
    from catalog.ingest.failing_rows import FailingRowsFile, FailingRowsNotKept, read_failing_rows

    kept = FailingRowsFile(tmp_path / "PSGA" / "batch-1-failing-rows.csv.gz")
    kept.add("性别", "code list", range(1, 50_001))
    kept.add("公民身份号码", "unique key", [4, 5])
    stored = kept.finish()

    assert stored is not None and stored.lines == 50_002
    text = b"".join(read_failing_rows(str(stored.path), stored.sha256)).decode()
    assert text.splitlines()[:2] == ["row,field,rule", "1,性别,code list"] and text.endswith(
        "5,公民身份号码,unique key\r\n"
    )
    assert len(list(csv.reader(io.StringIO(text)))) == 50_003
    with pytest.raises(FailingRowsNotKept):
        read_failing_rows(str(stored.path), "0" * 64)
    empty = FailingRowsFile(tmp_path / "PSGA" / "batch-2-failing-rows.csv.gz")
    assert empty.finish() is None and files_under(tmp_path) == [stored.path]
