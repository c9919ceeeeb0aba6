"""`datashare ingest`/`runs`/`quality-report`: exit codes by outcome (0 settled, 1 refused, 3 in quarantine, 4 failed),
interrupted runs shown as such, every failing row downloadable."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog.db import make_engine, session_scope, utcnow
from catalog.ingest.models import IngestBatch, RawExport
from catalog.ingest.publish import VersionWriter
from catalog.ingest.runs import this_process
from catalog.items.models import CatalogItem

POPULATION = "PSGA-RK-0001"


def drifted(folder: Path) -> str:
    path = folder / "drift.csv"
    path.write_text("公民身份号码,姓名\n440307195307144048,陈华\n", encoding="utf-8")
    return str(path)


def with_bad_codes(samples_dir: Path, folder: Path, bad_rows: int) -> str:
    lines = (samples_dir / "psga_population_20261121.csv").read_text(encoding="utf-8-sig").splitlines()
    for row in range(1, bad_rows + 1):
        lines[row] = lines[row].replace(",女,", ",未知,").replace(",男,", ",未知,")
    path = folder / "psga_population_20261122.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_an_export_in_quarantine_exits_3_every_time_until_an_operator_decides(datashare: Any, tmp_path: Path) -> None:
    datashare("demo")
    first = datashare("ingest", POPULATION, drifted(tmp_path), expect=3).output
    again = datashare("ingest", POPULATION, drifted(tmp_path), expect=3).output

    assert "quarantined batch 1" in first
    assert "was quarantined as batch 1 and awaits an operator" in again
    assert "datashare quarantine release 1 --reason" in again and "datashare quarantine discard 1" in again
    assert (
        json.loads(datashare("ingest", POPULATION, drifted(tmp_path), "--json", expect=3).output)[
            "duplicate_of_outcome"
        ]
        == "quarantined"
    )

    datashare("quarantine", "discard", "1", "--reason", "wrong file")
    assert "was ingested before; nothing changed" in datashare("ingest", POPULATION, drifted(tmp_path)).output


def test_an_unexpected_error_exits_4_and_running_it_again_publishes(
    datashare: Any, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datashare("demo")
    sample = str(samples_dir / "psga_population_20261121.csv")

    def disk_full(self: VersionWriter) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(VersionWriter, "finish", disk_full)
    failed = datashare("ingest", POPULATION, sample, expect=4).output
    monkeypatch.undo()

    assert "the ingestion failed (OSError); the run is recorded as failed" in failed
    assert "published version 1 with 520 rows" in datashare("ingest", POPULATION, sample).output
    records = json.loads(datashare("runs", POPULATION, "--json").output)
    assert [(record["outcome"], record["file_name"]) for record in records] == [
        ("published", "psga_population_20261121.csv"),
        ("failed", "psga_population_20261121.csv"),
    ]


def test_an_item_that_is_not_published_is_refused_with_exit_1(
    datashare: Any, samples_dir: Path, tmp_path: Path
) -> None:
    datashare("demo")
    datashare("catalog", "retire", POPULATION)

    refused = datashare("ingest", POPULATION, str(samples_dir / "psga_population_20261121.csv"), expect=1).output

    assert f"catalog item {POPULATION} is retired, not published" in refused
    assert json.loads(datashare("runs", "--json").output) == []
    assert not (tmp_path / "data" / "raw").exists()


def test_runs_show_an_interrupted_run_and_the_failing_rows_download_whole(
    datashare: Any, samples_dir: Path, tmp_path: Path
) -> None:
    datashare("demo")
    datashare("ingest", POPULATION, with_bad_codes(samples_dir, tmp_path, bad_rows=45), expect=3)
    killed = add_run_of_a_dead_process()

    records = json.loads(datashare("runs", "--json").output)
    table = datashare("runs").output

    assert [(r["batch"], r["outcome"]) for r in records] == [(killed, "interrupted"), (1, "quarantined")]
    assert (records[1]["rows_failed_rules"], records[1]["rows_refused_with_batch"]) == (45, 475)
    assert "batch 1: file psga_population_20261122.csv on " in table and "interrupted" in table
    assert f"batch {killed}: the run ended before it finished" in table

    summary = json.loads(datashare("quality-report", "1").output)
    code_list = next(check for check in summary["checks"] if check["rule"] == "code list")
    assert (code_list["failed"], len(code_list["failing_rows"])) == (45, 20)
    download = tmp_path / "failing.csv"
    datashare("quality-report", "1", "--rows", "--output", str(download))
    rows = list(csv.DictReader(io.StringIO(download.read_text(encoding="utf-8"))))
    assert [(int(row["row"]), row["field"], row["rule"]) for row in rows] == [
        (n, "性别", "code list") for n in range(1, 46)
    ]
    assert datashare("quality-report", "1", "--rows").output == download.read_text(encoding="utf-8")
    assert "no row of this batch failed a rule" in datashare("quality-report", str(killed), "--rows", expect=1).output
    assert "ingest batch 99 does not exist" in datashare("quality-report", "99", expect=1).output


def add_run_of_a_dead_process() -> int:
    """The record a run leaves when its process is killed: running, with a process id that is gone."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    engine = make_engine(os.environ["DATASHARE_DATABASE_URL"])
    try:
        with session_scope(engine) as session:
            item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
            raw = RawExport(item_id=item_id, sha256="f" * 64, file_name="killed.csv", size_bytes=1, stored_path="/x")
            session.add(raw)
            session.flush()
            batch = IngestBatch(
                item_id=item_id, raw_export_id=raw.id, outcome="running", trigger="test", host=this_process()[0],
                pid=int(ended.stdout), started_at=utcnow(), reasons=[], report={},
            )  # fmt: skip
            session.add(batch)
            session.flush()
            return batch.id
    finally:
        engine.dispose()


def test_a_delta_sent_before_the_item_was_declared_incremental_is_released_as_changes(
    datashare: Any, tmp_path: Path, samples_dir: Path
) -> None:
    """As a person meets it: the delta is schema drift until the item is declared incremental; released then, it is
    applied to the current version, and the release says so by its changes, not by the delta's three rows."""
    datashare("demo")
    datashare("ingest", POPULATION, str(samples_dir / "psga_population_20261121.csv"))
    delta = tmp_path / "delta.csv"
    delta.write_text(
        "公民身份号码,姓名,性别,出生日期,联系电话,户籍地址,所属社区,更新时间,_op\n"
        "440307199206225314,丁鹏,男,1992-06-22,16113960986,深圳市龙岗区丹梓大道151号,马峦社区,2026-11-21 02:00:00,U\n"
        "11010519491231002X,丁一,女,1949-12-31,,,江岭社区,2026-11-21 02:00:00,I\n"
        "440303201703041297,,,,,,,,D\n",
        encoding="utf-8",
    )
    assert "unexpected column(s): _op" in datashare("ingest", POPULATION, str(delta), expect=3).output
    catalog = tmp_path / "catalog.yaml"
    datashare("catalog", "export", str(catalog))
    item, declared = f"- code: {POPULATION}\n", f"- code: {POPULATION}\n  load:\n    mode: incremental\n"
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(item, declared), encoding="utf-8")
    datashare("catalog", "import", str(catalog))

    released = datashare("quarantine", "release", "2", "--reason", "declared incremental since").output
    assert (
        f"{POPULATION}: batch 2 released as version 2 incrementally: 1 inserted, 1 updated, 1 deleted, 518 carried "
        "over from version 1." in " ".join(released.split())
    )
