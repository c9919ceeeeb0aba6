"""Rules of the catalog file beyond the issue's list: each found by review, each must keep failing loudly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.orm import Session

from catalog.declarations.service import import_catalog_file, parse_catalog_text
from catalog.items import repository
from catalog.items import service as items
from catalog.items.errors import IllegalStatusChange, InvalidActor, InvalidDeclaration
from catalog.items.schemas import ItemStatus
from tests.catalog.helpers import OFFICER, demo_raw, import_demo, raw_field, raw_item, table_counts, write_yaml


def rejected(session: Session, tmp_path: Path, raw: dict[str, Any]) -> str:
    before = table_counts(session)
    with pytest.raises(InvalidDeclaration) as raised:
        import_catalog_file(session, write_yaml(tmp_path, raw), actor="test")
    assert table_counts(session) == before
    return raised.value.message


FIELD_RULES: list[Any] = [
    pytest.param(
        lambda f: f.update(data_type="integer", minimum=10, maximum=1),
        "minimum 10 is above maximum 1",
        id="min-above-max",
    ),
    pytest.param(
        lambda f: f.update(allowed_values=[]), "allowed_values: List should have at least 1 item", id="empty-code-list"
    ),
    pytest.param(
        lambda f: f.update(data_type="integer", allowed_values=["abc"]),
        "allowed value 'abc' is not a valid integer",
        id="code-of-wrong-type",
    ),
    pytest.param(
        lambda f: f.update(data_type="integer", pattern="^[0-9]+$"),
        "a pattern only applies to string",
        id="pattern-on-integer",
    ),
    pytest.param(lambda f: f.update(key=True, nullable=True), "a key field cannot be nullable", id="nullable-key"),
]


@pytest.mark.parametrize(("change", "message"), FIELD_RULES)
def test_field_rules(session: Session, tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    raw = demo_raw()
    change(raw_field(raw, "SCJG-FR-0001", "企业名称"))
    assert f"item SCJG-FR-0001, field 企业名称: {message}" in rejected(session, tmp_path, raw)


def test_a_sensitive_field_needs_a_masking_rule(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    raw_field(raw, "PSGA-RK-0001", "公民身份号码").update(level=4, masking="none")
    assert "field '公民身份号码' is level 3 or above: its masking rule cannot be none" in rejected(
        session, tmp_path, raw
    )


def test_tags_with_surrounding_spaces_are_refused(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    raw_item(raw, "PSGA-RK-0001")["tags"] = [" 人口"]
    assert "without leading or trailing spaces" in rejected(session, tmp_path, raw)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param({"location": "../../../../etc"}, "is not valid for file_drop", id="escaping-drop-folder"),
        pytest.param({"location": "/etc"}, "is not valid for file_drop", id="absolute-path"),
        pytest.param(
            {"access": "http", "location": "not a url", "file_pattern": None},
            "is not valid for http",
            id="http-not-a-url",
        ),
        pytest.param(
            {"access": "http", "location": "https://api.example/x"}, "file_pattern only applies", id="pattern-on-http"
        ),
        pytest.param(
            {"access": "sql", "location": "env:", "query": "select 1", "file_pattern": None},
            "is not valid for sql",
            id="sql-without-variable",
        ),
        pytest.param(
            {"access": "sql", "location": "env:PSGA_DB", "file_pattern": None},
            "a query is required",
            id="sql-without-query",
        ),
        pytest.param(
            {"access": "sql", "location": "env:DATASHARE_DATABASE_URL", "query": "select 1", "file_pattern": None},
            "is not valid for sql",
            id="sql-reading-the-platforms-database",
        ),
        pytest.param(
            {
                "access": "sql",
                "location": "env:AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                "query": "select 1",
                "file_pattern": None,
            },
            "is not valid for sql",
            id="sql-reading-airflows-database",
        ),
    ],
)
def test_source_system_locations(session: Session, tmp_path: Path, source: dict[str, Any], message: str) -> None:
    raw = demo_raw()
    raw["departments"][0]["source_systems"][0].update(source)
    assert "department psga, source system population" in (text := rejected(session, tmp_path, raw))
    assert message in text


def test_a_key_given_twice_is_refused(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("version: 1\nitems: []\nitems: []\n", encoding="utf-8")
    with pytest.raises(InvalidDeclaration, match="key 'items' is given twice"):
        import_catalog_file(session, path, actor="test")


def test_a_file_of_departments_only_imports(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    del raw["items"]
    report = import_catalog_file(session, write_yaml(tmp_path, raw), actor="test")
    assert (report.departments_changed, report.items.created) == (6, 0)


def test_a_bad_department_does_not_hide_other_problems(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    raw["departments"][0]["kind"] = "ministry"
    raw["departments"].append(dict(raw["departments"][1]))
    raw_item(raw, "ZSJ-MS-0001")["department"] = "nosuch"
    message = rejected(session, tmp_path, raw)
    assert "department psga, kind: Input should be" in message
    assert "unknown department 'psga'" not in message
    assert "department scjg is declared more than once" in message
    assert "item ZSJ-MS-0001: unknown department 'nosuch'" in message


def test_raising_a_minimum_level_checks_the_stored_items(session: Session, tmp_path: Path) -> None:
    import_demo(session)
    raw = {"version": 1, "classification": {"minimum_levels": {"address": 4}}}
    assert "item PSGA-RK-0001, field 户籍地址: level 3 would be below the new minimum 4" in rejected(
        session, tmp_path, raw
    )

    raw = demo_raw() | {"classification": {"minimum_levels": {"address": 4}}}
    raw_field(raw, "PSGA-RK-0001", "户籍地址")["level"] = 4
    report = import_catalog_file(session, write_yaml(tmp_path, raw), actor="test")
    assert report.scheme_changed and report.items.updated == 1


def test_level_codes_cannot_move_between_levels(session: Session, tmp_path: Path) -> None:
    raw = {"version": 1, "classification": {"levels": [
        {"level": 1, "code": "internal", "name_zh": "内部", "name_en": "Internal"},
        {"level": 2, "code": "public", "name_zh": "公开", "name_en": "Public"},
    ]}}  # fmt: skip
    assert "level code internal belongs to level 2" in rejected(session, tmp_path, raw)


def test_a_new_level_can_be_added_and_used(session: Session, tmp_path: Path) -> None:
    raw = demo_raw() | {"classification": {"levels": [{"level": 5, "code": "secret", "name_zh": "机密",
                                                        "name_en": "Secret"}]}}  # fmt: skip
    raw_field(raw, "PSGA-RK-0001", "公民身份号码")["level"] = 5
    import_catalog_file(session, write_yaml(tmp_path, raw), actor=OFFICER, by_officer=True)
    assert items.get_item(session, "PSGA-RK-0001").level == 5


def test_values_longer_than_their_columns_are_refused_on_every_backend(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    raw_item(raw, "ZSJ-MS-0001")["update_frequency"] = "0 " + ",".join(str(h) for h in range(24)) * 3 + " * * *"
    assert "update_frequency: String should have at most 64 characters" in rejected(session, tmp_path, raw)

    import_demo(session)
    with pytest.raises(InvalidActor):
        items.transition(session, "ZSJ-MS-0001", ItemStatus.RETIRED, actor="x" * 201)


def test_a_transition_based_on_a_stale_read_changes_nothing(session: Session) -> None:
    import_demo(session)
    stale = repository.get_by_code_or_raise(session, "ZSJ-MS-0001")
    items.transition(session, "ZSJ-MS-0001", ItemStatus.RETIRED, actor="steward:zsj")

    assert repository.set_status(session, stale, ItemStatus.RETIRED.value, actor="officer:li") is False
    assert [c.actor for c in items.get_history(session, "ZSJ-MS-0001") if c.action == "status"] == ["steward:zsj"]


def test_timestamps_are_utc_on_every_backend(session: Session) -> None:
    import_demo(session)
    item = items.get_item(session, "PSGA-RK-0001")
    offset = item.created_at.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert items.get_history(session, "PSGA-RK-0001")[0].changed_at.tzinfo is not None


def test_a_yaml_file_may_quote_or_not_quote_numeric_bounds() -> None:
    raw = demo_raw()
    raw_field(raw, "SCJG-FR-0001", "注册资本万元")["minimum"] = 0
    parsed = parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True))
    assert parsed.items[1].fields[4].minimum == "0"


def test_illegal_status_change_error_is_specific(session: Session) -> None:
    import_demo(session)
    with pytest.raises(IllegalStatusChange, match="cannot go from published to in_review"):
        items.transition(session, "PSGA-RK-0001", ItemStatus.IN_REVIEW, actor="steward:psga")
