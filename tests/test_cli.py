"""The datashare command line, run in-process against a fresh database of each backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog.cli import DEMO_CATALOG
from tests.catalog.helpers import demo_raw, raw_field, write_yaml


def test_commands_refuse_a_database_without_schema(datashare: Any) -> None:
    result = datashare("catalog", "search", expect=2)
    assert "datashare db upgrade" in result.output


def test_import_search_show_and_lifecycle(datashare: Any, tmp_path: Path) -> None:
    datashare("db", "upgrade")
    refused = datashare("catalog", "import", str(DEMO_CATALOG), expect=1)
    assert "only a data officer's import (datashare catalog import --officer)" in refused.output
    assert "3 items created" in datashare("demo", "--samples", str(tmp_path / "none")).output  # as its officer
    assert "0 items created, 0 updated, 3 unchanged" in datashare("catalog", "import", str(DEMO_CATALOG)).output

    found = json.loads(datashare("catalog", "search", "人口", "--json").output)
    assert [item["code"] for item in found["items"]] == ["PSGA-RK-0001"]
    filtered = json.loads(
        datashare("catalog", "search", "--sharing-type", "conditional", "--not-open", "--json").output
    )
    assert [item["code"] for item in filtered["items"]] == ["PSGA-RK-0001", "ZSJ-MS-0001"]
    assert "PSGA-RK-0001" in datashare("catalog", "search", "人口").output

    shown = json.loads(datashare("catalog", "show", "SCJG-FR-0001", "--json", "--history").output)
    assert shown["open_data"] is True
    assert shown["fields"][0]["name"] == "统一社会信用代码"
    assert shown["history"][0]["action"] == "created"

    assert "is now retired" in datashare("catalog", "retire", "SCJG-FR-0001", "--actor", "steward:scjg").output
    refused = datashare("catalog", "publish", "SCJG-FR-0001", expect=1)
    assert "cannot go from retired to published" in refused.output
    missing = datashare("catalog", "show", "NOPE-1", expect=1)
    assert "NOPE-1 does not exist" in missing.output


def test_a_bad_file_is_rejected_with_the_item_and_field_named(datashare: Any, tmp_path: Path) -> None:
    datashare("db", "upgrade")
    raw = demo_raw()
    raw_field(raw, "PSGA-RK-0001", "公民身份号码")["level"] = 1

    result = datashare("catalog", "import", str(write_yaml(tmp_path, raw)), expect=1)

    assert "item PSGA-RK-0001, field 公民身份号码: level 1 is below 3" in result.output
    assert "nothing was written" in result.output
    assert json.loads(datashare("catalog", "search", "--json").output)["total"] == 0


def test_catalog_text_is_printed_as_it_is(datashare: Any, tmp_path: Path) -> None:
    datashare("db", "upgrade")
    raw = demo_raw()
    raw["items"][0]["title"] = "人口[/]基本信息[bold]"
    for item in raw["items"]:
        del item["status"]  # drafts: a steward's import
    datashare("catalog", "import", str(write_yaml(tmp_path, raw)))

    assert "人口[/]基本信息[bold]" in datashare("catalog", "search", "人口").output
    assert "人口[/]基本信息[bold]" in datashare("catalog", "show", "PSGA-RK-0001").output


def test_export_round_trips_through_a_file(datashare: Any, tmp_path: Path) -> None:
    datashare("demo", "--samples", str(tmp_path / "none"))
    exported = tmp_path / "exported.yaml"

    datashare("catalog", "export", str(exported))

    assert "0 items created, 0 updated, 3 unchanged" in datashare("catalog", "import", str(exported)).output
    again = tmp_path / "again.yaml"
    datashare("catalog", "export", str(again))
    assert again.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")


def test_demo_seeds_and_shows_the_catalog(datashare: Any) -> None:
    result = datashare("demo")
    assert "3 items match" in result.output
    assert "3 items match" in datashare("demo").output  # running it again is harmless


def test_ingest_runs_and_quarantine_commands(datashare: Any, tmp_path: Path, samples_dir: Path) -> None:
    datashare("demo")
    sample = str(samples_dir / "psga_population_20261121.csv")

    published = json.loads(datashare("ingest", "PSGA-RK-0001", sample, "--json").output)
    assert (published["outcome"], published["version"], published["rows_accepted"]) == ("published", 1, 520)
    assert "was ingested before; nothing changed" in datashare("ingest", "PSGA-RK-0001", sample).output

    drifted = tmp_path / "drift.csv"
    drifted.write_text("公民身份号码,姓名\n440307195307144048,陈华\n", encoding="utf-8")
    quarantined = datashare("ingest", "PSGA-RK-0001", str(drifted), expect=3).output
    assert "quarantined batch 2; the current version is unchanged" in quarantined
    assert "missing column(s): 性别" in quarantined

    records = json.loads(datashare("runs", "PSGA-RK-0001", "--json").output)
    assert [(r["batch"], r["outcome"], r["rows_accepted"], r["version"]) for r in records] == [
        (2, "quarantined", 0, None),
        (1, "published", 520, 1),
    ]
    assert records[1]["quality_success"] is True and records[1]["trigger"].startswith("cli:")
    assert "batch 2: schema drift" in datashare("runs").output

    assert "1 quarantined batch(es)" in datashare("quarantine", "list").output
    datashare("quarantine", "discard", "2", "--reason", "wrong file uploaded")
    assert "0 quarantined batch(es)" in datashare("quarantine", "list").output
    assert json.loads(datashare("runs", "--json", "--limit", "1").output)[0]["decided_by"].startswith("cli:")
