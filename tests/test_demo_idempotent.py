"""`datashare demo` run again changes nothing in the catalog: it creates only what is missing and never
overwrites a decision taken since (issue 12: the README's review session, then `./dev run` again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine
from catalog.settings import get_settings
from tests.catalog.helpers import demo_raw, write_yaml

COMPLAINTS = "ZSJ-MS-0001"
PHONE = "诉求人电话"


def phone_field(datashare: Any) -> dict[str, Any]:
    shown = json.loads(datashare("catalog", "show", COMPLAINTS, "--json").output)
    return next(field for field in shown["fields"] if field["name"] == PHONE)


def audit_rows() -> list[tuple[str, str]]:
    engine = make_engine(get_settings().resolved_database_url)
    with engine.connect() as connection:
        query = select(AuditEvent.action, AuditEvent.principal).order_by(AuditEvent.id)
        rows = [(action, principal) for action, principal in connection.execute(query)]
    engine.dispose()
    return rows


def test_a_second_demo_keeps_the_officers_decision(datashare: Any, tmp_path: Path) -> None:
    datashare("demo")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(f"item,field,level,semantic_type,reason\n{COMPLAINTS},{PHONE},3,phone,手机号码属个人信息\n",
                         encoding="utf-8")  # fmt: skip
    datashare("review", "decide", str(decisions), "--officer", "officer")
    raised = phone_field(datashare)
    assert (raised["level"], raised["semantic_type"]) == (3, "phone")
    before = len(audit_rows())

    second = datashare("demo")

    assert "0 items created" in second.output and "3 already there" in second.output
    assert phone_field(datashare) == raised
    assert audit_rows()[before:] == []  # the demo changed nothing, so it audited nothing


def test_a_second_demo_keeps_principals_tokens_and_drop_folders(datashare: Any) -> None:
    datashare("demo")
    data_dir = get_settings().resolved_data_dir
    credentials = (data_dir / "demo-credentials.json").read_text(encoding="utf-8")
    dropped = sorted(path.relative_to(data_dir) for path in (data_dir / "drop").rglob("*") if path.is_file())
    assert dropped
    before = len(audit_rows())

    second = datashare("demo")

    assert "Sample exports placed in drop folders: 0." in second.output
    assert (data_dir / "demo-credentials.json").read_text(encoding="utf-8") == credentials
    assert audit_rows()[before:] == []


def test_a_second_demo_keeps_a_changed_department(datashare: Any, tmp_path: Path) -> None:
    datashare("demo", "--samples", str(tmp_path / "none"))
    moved = tmp_path / "moved.yaml"
    moved.write_text(DEPARTMENT_MOVED, encoding="utf-8")
    assert "1 departments changed" in datashare("catalog", "import", str(moved), "--actor", "admin:ops").output
    before = len(audit_rows())

    datashare("demo", "--samples", str(tmp_path / "none"))

    exported = tmp_path / "exported.yaml"
    datashare("catalog", "export", str(exported))
    assert "drop/psga/population-2027" in exported.read_text(encoding="utf-8")
    assert audit_rows()[before:] == []


DEPARTMENT_MOVED = """version: 1
departments:
  - code: psga
    name_zh: 深圳市公安局坪山分局
    name_en: Pingshan Public Security Sub-bureau
    kind: city_department
    source_systems:
      - {code: population, name: 人口信息管理系统, access: file_drop, location: drop/psga/population-2027,
         file_pattern: psga_population_*.csv, format: csv, encoding: auto}
"""


def test_a_second_demo_adds_the_principals_of_a_new_department(datashare: Any, tmp_path: Path) -> None:
    raw = demo_raw()
    raw["departments"] = [department for department in raw["departments"] if department["code"] != "mljd"]
    datashare("demo", "--samples", str(tmp_path / "none"), "--catalog", str(write_yaml(tmp_path, raw, "fewer.yaml")))
    path = get_settings().resolved_data_dir / "demo-credentials.json"
    first = json.loads(path.read_text(encoding="utf-8"))
    assert "mljd" not in first["tokens"]

    datashare("demo", "--samples", str(tmp_path / "none"))

    second = json.loads(path.read_text(encoding="utf-8"))
    assert {name: second["users"][name] for name in first["users"]} == first["users"]  # kept as they were
    assert {name: second["tokens"][name] for name in first["tokens"]} == first["tokens"]
    assert second["users"]["mljd-steward"]["department"] == "mljd" and second["tokens"]["mljd"].startswith("dst_")
    datashare("policy", "check", "--officer", "officer")  # exit 0: no drift, the new principals' roles explained
