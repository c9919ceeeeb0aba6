from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.orm import Session

from catalog.declarations import service as declarations_service
from catalog.declarations.service import (
    dump_catalog,
    export_catalog,
    import_catalog,
    import_catalog_file,
    parse_catalog_text,
)
from catalog.items import service as items
from catalog.items.errors import InvalidDeclaration
from catalog.items.schemas import ItemStatus, SearchQuery
from tests.catalog.helpers import (
    OFFICER,
    demo_file,
    demo_raw,
    import_demo,
    raw_field,
    raw_item,
    table_counts,
    write_yaml,
)


def test_demo_catalog_imports_every_item_and_department(session: Session) -> None:
    report = import_catalog(session, demo_file(), actor=OFFICER, by_officer=True)

    assert (report.items.created, report.items.updated, report.items.unchanged) == (3, 0, 0)
    assert report.departments_changed == 6
    population = items.get_item(session, "PSGA-RK-0001")
    assert population.level == 3
    assert population.key_fields == ["公民身份号码"]
    assert [field.name for field in population.fields][:2] == ["公民身份号码", "姓名"]


def test_importing_the_same_file_twice_changes_nothing(session: Session) -> None:
    import_demo(session)
    before = table_counts(session)
    history_before = items.get_history(session, "PSGA-RK-0001")
    read_before = [items.get_item(session, item.code) for item in demo_file().items]

    report = import_catalog(session, demo_file(), actor="someone else")
    session.expire_all()

    assert not report.changed
    assert [items.get_item(session, item.code) for item in demo_file().items] == read_before  # updated_at too
    assert report.items.unchanged == 3
    assert table_counts(session) == before
    assert items.get_history(session, "PSGA-RK-0001") == history_before


def test_export_writes_the_same_format_back(session: Session) -> None:
    import_demo(session)

    exported_text = dump_catalog(export_catalog(session))
    exported = parse_catalog_text(exported_text)

    original = demo_file()
    assert exported.departments == original.departments
    assert exported.items == original.items
    assert dump_catalog(parse_catalog_text(exported_text)) == exported_text
    assert not import_catalog(session, exported, actor="test").changed


def test_export_keeps_the_declared_order_of_source_systems(session: Session) -> None:
    raw = demo_raw()
    psga = raw["departments"][0]
    vehicle = {"code": "vehicle", "name": "机动车管理系统", "location": "drop/psga/vehicle"}
    psga["source_systems"].insert(0, vehicle)
    declared = parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True))
    import_catalog(session, declared, actor=OFFICER, by_officer=True)
    session.expire_all()  # read back from the database, not from the objects just written

    exported = export_catalog(session)

    assert [s.code for s in exported.departments[0].source_systems] == ["vehicle", "population"]
    assert exported.departments == declared.departments


def test_a_changed_declaration_is_updated_and_recorded_in_history(session: Session) -> None:
    import_demo(session)
    raw = demo_raw()
    raw_field(raw, "ZSJ-MS-0001", "诉求人电话")["level"] = 4
    raw_item(raw, "ZSJ-MS-0001")["fields"].append({"name": "备注", "label": "Remarks", "level": 2})
    raw_item(raw, "ZSJ-MS-0001")["title"] = "民生诉求事件（全量）"

    report = import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="steward:zsj")

    assert (report.items.created, report.items.updated, report.items.unchanged) == (0, 1, 2)
    item = items.get_item(session, "ZSJ-MS-0001")
    assert item.level == 4
    assert item.fields[-1].name == "备注"
    change = items.get_history(session, "ZSJ-MS-0001")[-1]
    assert change.actor == "steward:zsj"
    assert change.action == "updated"
    assert change.changes["title"] == ["民生诉求事件", "民生诉求事件（全量）"]
    assert change.changes["fields"]["诉求人电话"] == {"level": [1, 4]}
    assert change.changes["fields"]["备注"]["added"]["label"] == "Remarks"


def test_a_field_left_out_of_a_declaration_is_removed(session: Session) -> None:
    import_demo(session)
    raw = demo_raw()
    fields = raw_item(raw, "PSGA-RK-0001")["fields"]
    raw_item(raw, "PSGA-RK-0001")["fields"] = [f for f in fields if f["name"] != "联系电话"]

    import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="test")

    item = items.get_item(session, "PSGA-RK-0001")
    assert "联系电话" not in [field.name for field in item.fields]
    assert "removed" in items.get_history(session, "PSGA-RK-0001")[-1].changes["fields"]["联系电话"]


def _duplicate_item(raw: dict[str, Any]) -> None:
    raw["items"].append(dict(raw_item(raw, "SCJG-FR-0001")))


def _duplicate_field(raw: dict[str, Any]) -> None:
    raw_item(raw, "PSGA-RK-0001")["fields"].append({"name": "姓名", "semantic_type": "person_name", "level": 3})


def _no_key(raw: dict[str, Any]) -> None:
    raw_field(raw, "ZSJ-MS-0001", "事件编号")["key"] = False


def _unknown_level(raw: dict[str, Any]) -> None:
    raw_field(raw, "SCJG-FR-0001", "企业名称")["level"] = 7


def _unknown_semantic_type(raw: dict[str, Any]) -> None:
    raw_field(raw, "SCJG-FR-0001", "法定代表人")["semantic_type"] = "passport"


def _open_but_not_shared(raw: dict[str, Any]) -> None:
    raw_item(raw, "SCJG-FR-0001")["sharing_type"] = "not_shared"


def _resident_id_at_level_1(raw: dict[str, Any]) -> None:
    raw_field(raw, "PSGA-RK-0001", "公民身份号码")["level"] = 1


def _phone_at_level_2(raw: dict[str, Any]) -> None:
    raw_field(raw, "PSGA-RK-0001", "联系电话")["level"] = 2


def _invalid_cron(raw: dict[str, Any]) -> None:
    raw_item(raw, "ZSJ-MS-0001")["update_frequency"] = "61 * * * *"


def _unknown_department(raw: dict[str, Any]) -> None:
    raw_item(raw, "SCJG-FR-0001")["department"] = "nosuch"


def _unknown_source_system(raw: dict[str, Any]) -> None:
    raw_item(raw, "SCJG-FR-0001")["source_system"] = "population"


def _bad_pattern(raw: dict[str, Any]) -> None:
    raw_field(raw, "ZSJ-MS-0001", "事件编号")["pattern"] = "^PS[0-9{14}$"


def _bound_of_wrong_type(raw: dict[str, Any]) -> None:
    raw_field(raw, "PSGA-RK-0001", "出生日期")["minimum"] = "yesterday"


BAD_DECLARATIONS = [
    pytest.param(_duplicate_item, "SCJG-FR-0001", None, "item code is declared more than once", id="duplicate-item"),
    pytest.param(_duplicate_field, "PSGA-RK-0001", None, "field '姓名' is declared more than once", id="dup-field"),
    pytest.param(_no_key, "ZSJ-MS-0001", None, "no field is part of the key", id="no-key"),
    pytest.param(_unknown_level, "SCJG-FR-0001", "企业名称", "unknown classification level 7", id="unknown-level"),
    pytest.param(
        _unknown_semantic_type,
        "SCJG-FR-0001",
        "法定代表人",
        "semantic_type: Input should be",
        id="unknown-semantic-type",
    ),
    pytest.param(
        _open_but_not_shared,
        "SCJG-FR-0001",
        None,
        "open-data item cannot have sharing_type not_shared",
        id="open-not-shared",
    ),
    pytest.param(
        _resident_id_at_level_1,
        "PSGA-RK-0001",
        "公民身份号码",
        "level 1 is below 3, the lowest allowed for semantic type resident_id",
        id="resident-id-level-1",
    ),
    pytest.param(
        _phone_at_level_2,
        "PSGA-RK-0001",
        "联系电话",
        "lowest allowed for semantic type phone",
        id="phone-level-2",
    ),
    pytest.param(_invalid_cron, "ZSJ-MS-0001", None, "'61 * * * *' is neither a 5-field cron", id="invalid-cron"),
    pytest.param(_unknown_department, "SCJG-FR-0001", None, "unknown department 'nosuch'", id="unknown-department"),
    pytest.param(
        _unknown_source_system,
        "SCJG-FR-0001",
        None,
        "department 'scjg' has no source system 'population'",
        id="foreign-source-system",
    ),
    pytest.param(
        _bad_pattern, "ZSJ-MS-0001", "事件编号", "pattern is not a valid regular expression", id="bad-pattern"
    ),
    pytest.param(
        _bound_of_wrong_type,
        "PSGA-RK-0001",
        "出生日期",
        "minimum 'yesterday' is not a valid date",
        id="bad-bound",
    ),
]


@pytest.mark.parametrize(("break_it", "item", "field", "message"), BAD_DECLARATIONS)
def test_a_bad_declaration_is_rejected_by_item_and_field_and_nothing_is_written(
    session: Session, break_it: Any, item: str, field: str | None, message: str
) -> None:
    raw = demo_raw()
    raw_item(raw, "PSGA-RK-0001")["title"] = "人口基本信息（改）"  # a valid change that must not land either
    break_it(raw)
    before = table_counts(session)

    with pytest.raises(InvalidDeclaration) as raised:
        import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="test")

    problems = [p for p in raised.value.problems if p.item == item and message in p.message]
    assert problems, raised.value.message
    assert problems[0].field == field
    assert f"item {item}" in raised.value.message
    assert table_counts(session) == before


def test_a_bad_declaration_leaves_existing_items_untouched(session: Session) -> None:
    import_demo(session)
    before = table_counts(session)
    raw = demo_raw()
    raw_item(raw, "PSGA-RK-0001")["title"] = "人口基本信息（改）"
    raw_field(raw, "PSGA-RK-0001", "公民身份号码")["level"] = 1

    with pytest.raises(InvalidDeclaration, match="公民身份号码"):
        import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="test")

    assert items.get_item(session, "PSGA-RK-0001").title == "人口基本信息"
    assert table_counts(session) == before


def test_every_problem_in_a_file_is_reported_at_once(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    _resident_id_at_level_1(raw)
    raw_item(raw, "PSGA-RK-0001")["department"] = "nosuch"
    _invalid_cron(raw)
    _unknown_semantic_type(raw)

    with pytest.raises(InvalidDeclaration) as raised:
        import_catalog_file(session, write_yaml(tmp_path, raw), actor="test")

    located = {(problem.item, problem.field) for problem in raised.value.problems}
    assert located == {
        ("PSGA-RK-0001", "公民身份号码"),
        ("PSGA-RK-0001", None),
        ("SCJG-FR-0001", "法定代表人"),
        ("ZSJ-MS-0001", None),
    }


def test_a_file_that_is_not_yaml_gets_a_clear_error() -> None:
    with pytest.raises(InvalidDeclaration, match="is not valid YAML"):
        parse_catalog_text("items: [unclosed", source="broken.yaml")


@pytest.mark.parametrize("declared", ["draft", "in_review", "retired"])
def test_an_import_cannot_change_the_status_of_an_existing_item(session: Session, declared: str) -> None:
    import_demo(session)
    raw = demo_raw()
    raw_item(raw, "PSGA-RK-0001")["status"] = declared

    with pytest.raises(InvalidDeclaration, match=f"status is published; a declaration cannot change it to {declared}"):
        import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="test")


def test_a_declaration_without_status_keeps_the_stored_one(session: Session) -> None:
    import_demo(session)
    items.transition(session, "ZSJ-MS-0001", ItemStatus.RETIRED, actor="steward:zsj")
    raw = demo_raw()
    for item in raw["items"]:
        del item["status"]
    raw["items"].append({**raw_item(raw, "ZSJ-MS-0001"), "code": "ZSJ-MS-0002"})

    report = import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="test")

    assert (report.items.created, report.items.unchanged) == (1, 3)
    assert items.get_item(session, "ZSJ-MS-0001").status is ItemStatus.RETIRED
    assert items.get_item(session, "ZSJ-MS-0002").status is ItemStatus.DRAFT


def test_a_json_catalog_file_imports_like_yaml(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(demo_raw(), ensure_ascii=False), encoding="utf-8")

    report = import_catalog_file(session, path, actor=OFFICER, by_officer=True)

    assert report.items.created == 3
    assert items.get_item(session, "ZSJ-MS-0001").fields[-1].name == "诉求人电话"


def test_a_bulk_import_refreshes_statistics(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    refreshed: list[None] = []  # refresh_statistics returns None: one entry per call
    real = declarations_service.items_repository.refresh_statistics
    monkeypatch.setattr(declarations_service, "BULK_CHANGE", 3)
    monkeypatch.setattr(
        declarations_service.items_repository, "refresh_statistics", lambda s: refreshed.append(real(s))
    )

    import_demo(session)  # 3 items: on PostgreSQL this runs ANALYZE inside the import's transaction
    import_demo(session)  # nothing changes: no refresh

    assert len(refreshed) == 1
    assert items.search(session, SearchQuery(text="人口")).total == 1
