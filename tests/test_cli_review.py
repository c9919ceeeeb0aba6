"""`datashare review`: the queue, batch decisions from CSV and JSON files, stewards' proposals, history and
reports, run in-process against the demo on a fresh database of each backend."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.helpers import demo_raw, write_yaml

POPULATION = "PSGA-RK-0001"


@pytest.fixture
def datashare(datashare: Any, tmp_path: Path) -> Any:
    """`datashare ARGS...` against the demo's principals and its catalog as drafts, every field awaiting review,
    on a fresh database."""
    raw = demo_raw()
    for item in raw["items"]:
        del item["status"]
    unreviewed = write_yaml(tmp_path, raw, "unreviewed.yaml")
    datashare("demo", "--samples", str(tmp_path / "no-samples"), "--catalog", str(unreviewed))
    return datashare


def queue(datashare: Any, *args: str) -> dict[str, Any]:
    return dict(json.loads(datashare("review", "queue", "--json", *args).output))


def test_queue_filters_and_pages(datashare: Any) -> None:
    everything = queue(datashare, "--limit", "1000")
    assert everything["total"] == len(everything["entries"]) > 8  # the demo's fields all wait for an officer
    first = everything["entries"][0]
    assert (first["item"], first["field"], first["department"]) == (POPULATION, "公民身份号码", "psga")

    psga = queue(datashare, "--department", "psga")
    assert psga["total"] == 8
    assert [entry["field"] for entry in queue(datashare, "--department", "psga", "--level", "2")["entries"]] == [
        "性别",
        "所属社区",
    ]
    assert queue(datashare, "--semantic-type", "resident_id")["total"] == 1
    page = queue(datashare, "--department", "psga", "--limit", "3", "--offset", "3")
    assert [entry["field"] for entry in page["entries"]] == ["出生日期", "联系电话", "户籍地址"]
    assert queue(datashare, "--finding", "any")["total"] == 0

    table = datashare("review", "queue", "--department", "psga", "--limit", "2").output
    assert "公民身份号码" in table and "8 field(s) waiting; showing 1-2." in table
    refused = datashare("review", "queue", "--finding", "passport", expect=2)
    assert "not one of any, none" in refused.output

    by_item = json.loads(datashare("review", "items", "--json").output)
    pending = {entry["item"]: entry["pending_fields"] for entry in by_item["entries"]}
    assert pending[POPULATION] == 8 and sum(pending.values()) == everything["total"]
    assert "PSGA-RK-0001" in datashare("review", "items", "--department", "psga").output


def test_decide_a_csv_file_all_or_nothing(datashare: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "item,field,level,semantic_type,reason\n"
        f"{POPULATION},公民身份号码,,,\n"
        f"{POPULATION},性别,1,,\n"  # a change without a reason
        f"{POPULATION},NOPE,,,\n",
        encoding="utf-8",
    )
    refused = datashare("review", "decide", str(bad), "--officer", "officer", expect=1)
    assert "no such field: PSGA-RK-0001.NOPE" in refused.output
    bad.write_text(f"item,field,level\n{POPULATION},性别,1\n", encoding="utf-8")
    refused = datashare("review", "decide", str(bad), "--officer", "officer", expect=1)
    assert "PSGA-RK-0001.性别: a change needs a reason" in refused.output
    bad.write_text(f"item,field,level\n{POPULATION},性别,high\n", encoding="utf-8")
    assert (
        "row 2: level: Input should be a valid integer"
        in datashare("review", "decide", str(bad), "--officer", "officer", expect=1).output
    )
    bad.write_text(f"item,field,verdict\n{POPULATION},性别,ok\n", encoding="utf-8")
    assert (
        "unknown column(s): verdict" in datashare("review", "decide", str(bad), "--officer", "officer", expect=1).output
    )
    assert queue(datashare, "--department", "psga")["total"] == 8  # nothing was decided

    good = tmp_path / "decisions.csv"
    good.write_bytes(
        (
            "\ufeffitem,field,level,semantic_type,reason\r\n"  # as a spreadsheet saves "CSV UTF-8"
            f"{POPULATION},公民身份号码,,,\r\n"
            f"{POPULATION},性别,3,,与身份号码关联可识别个人\r\n"
            f"{POPULATION},更新时间,,identifier,记录号\r\n"
        ).encode()
    )
    output = datashare("review", "decide", str(good), "--officer", "officer").output

    assert "Decided 3 field(s): 2 changed, 1 raised; 0 subscription(s) masked, 0 notification(s)." in output
    assert "raised PSGA-RK-0001.性别: level 2 -> 3" in output
    assert queue(datashare, "--department", "psga")["total"] == 5
    history = json.loads(datashare("review", "history", POPULATION, "--json").output)
    assert [(h["field"], h["from_level"], h["to_level"], h["to_semantic_type"], h["decided_by"]) for h in history] == [
        ("公民身份号码", 3, 3, "resident_id", "user:officer"),
        ("性别", 2, 3, "code_list", "user:officer"),
        ("更新时间", 1, 1, "identifier", "user:officer"),
    ]
    assert history[1]["reason"] == "与身份号码关联可识别个人"
    table = datashare("review", "history", POPULATION).output
    assert "2 -> 3" in table and "none -> identifier" in table and "3 decision(s) on PSGA-RK-0001." in table


def test_decide_a_json_file_as_a_data_officer_only(datashare: Any, tmp_path: Path) -> None:
    file = tmp_path / "decisions.json"
    decisions = [{"item": "SCJG-FR-0001", "field": "法定代表人"}, {"item": "SCJG-FR-0001", "field": "企业名称"}]
    file.write_text(json.dumps({"decisions": decisions}, ensure_ascii=False), encoding="utf-8")

    assert (
        "psga-steward may not decide classification"
        in datashare("review", "decide", str(file), "--officer", "psga-steward", expect=1).output
    )
    assert (
        "there is no active user nobody"
        in datashare("review", "decide", str(file), "--officer", "nobody", expect=1).output
    )
    report = json.loads(datashare("review", "decide", str(file), "--officer", "officer", "--json").output)

    assert (report["decided"], report["changed"], report["raised"]) == (2, 0, [])
    file.write_text(json.dumps(decisions[:1]), encoding="utf-8")  # a plain list works too
    assert "Decided 1 field(s)" in datashare("review", "decide", str(file), "--officer", "officer").output
    file.write_text("{not json", encoding="utf-8")
    assert "not JSON" in datashare("review", "decide", str(file), "--officer", "officer", expect=1).output


def test_propose_as_a_steward_of_the_items_department(datashare: Any) -> None:
    args = ("review", "propose", POPULATION, "所属社区", "--level", "3", "--semantic-type", "address",
            "--reason", "社区可定位到人")  # fmt: skip
    refused = datashare(*args, "--steward", "zsj-steward", expect=1).output
    assert "zsj-steward may not propose classification for department psga" in refused
    assert (
        "catalog item NOPE-1 does not exist"
        in datashare(
            "review", "propose", "NOPE-1", "x", "--level", "3", "--reason", "r", "--steward", "psga-steward", expect=1
        ).output
    )

    output = datashare(*args, "--steward", "psga-steward").output

    assert "Proposal 1: PSGA-RK-0001.所属社区 at level 3" in output
    [entry] = queue(datashare, "--department", "psga", "--level", "2", "--semantic-type", "code_list")["entries"][1:]
    assert entry["suggested_level"] == 3
    assert [(p["source"], p["semantic_type"], p["created_by"]) for p in entry["proposals"]] == [
        ("steward", "address", "user:psga-steward")
    ]
    [row] = csv.DictReader(io.StringIO(datashare("review", "report", "proposals").output))
    assert (row["item"], row["field"], row["proposed_level"], row["created_by"]) == (
        POPULATION, "所属社区", "3", "user:psga-steward",
    )  # fmt: skip


def test_reports_in_csv_and_json(datashare: Any, tmp_path: Path) -> None:
    levels = list(csv.DictReader(io.StringIO(datashare("review", "report", "levels", "--department", "psga").output)))
    assert levels == [
        {"department": "psga", "level": "1", "fields": "1", "approved": "0", "pending": "1"},
        {"department": "psga", "level": "2", "fields": "2", "approved": "0", "pending": "2"},
        {"department": "psga", "level": "3", "fields": "5", "approved": "0", "pending": "5"},
    ]
    unreviewed = json.loads(datashare("review", "report", "unreviewed", "--format", "json").output)
    assert len(unreviewed) == queue(datashare)["total"]
    assert datashare("review", "report", "decisions").output.splitlines() == ["officer,day,decisions,changes,raised"]

    target = tmp_path / "levels.json"
    datashare("review", "report", "levels", "--format", "json", "--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8"))[0]["department"] == "psga"
    assert "no report 'everything'" in datashare("review", "report", "everything", expect=1).output
    assert "department nope does not exist" in datashare("review", "report", "levels", "--department", "nope",
                                                          expect=1).output  # fmt: skip
    assert "catalog item NOPE-1 does not exist" in datashare("review", "history", "NOPE-1", expect=1).output
