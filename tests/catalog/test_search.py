from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from catalog.declarations.service import import_catalog_file
from catalog.items import service as items
from catalog.items.schemas import ItemStatus, SearchQuery, SharingType
from tests.catalog.helpers import OFFICER, demo_raw, import_demo, write_yaml


def codes(session: Session, **filters: Any) -> list[str]:
    return [item.code for item in items.search(session, SearchQuery(**filters)).items]


@pytest.fixture
def demo(session: Session) -> Session:
    import_demo(session)
    return session


def test_two_chinese_characters_find_the_population_item(demo: Session) -> None:
    page = items.search(demo, SearchQuery(text="人口"))

    assert [item.code for item in page.items] == ["PSGA-RK-0001"]
    assert page.total == 1
    assert page.items[0].title == "人口基本信息"
    assert page.items[0].department == "psga"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("信用代码", ["SCJG-FR-0001"], id="field-name"),
        pytest.param("complainant PHONE", ["ZSJ-MS-0001"], id="field-labels-any-case"),
        pytest.param("scjg-fr", ["SCJG-FR-0001"], id="code-any-case"),
        pytest.param("凌晨导出", ["PSGA-RK-0001"], id="description"),
        pytest.param("基础库", ["PSGA-RK-0001", "SCJG-FR-0001"], id="tag"),
        pytest.param("电话", ["PSGA-RK-0001", "ZSJ-MS-0001"], id="substring-of-field-names"),
        pytest.param("电话 诉求", ["ZSJ-MS-0001"], id="every-word-must-match"),
        pytest.param("100%", [], id="like-wildcards-are-literal"),
        pytest.param("公民_份", [], id="underscore-is-literal"),
    ],
)
def test_keywords_match_code_title_description_tags_field_names_and_labels(
    demo: Session, text: str, expected: list[str]
) -> None:
    assert codes(demo, text=text) == expected


def test_filters_combine(demo: Session) -> None:
    assert codes(demo, department="scjg") == ["SCJG-FR-0001"]
    assert codes(demo, sharing_type=SharingType.CONDITIONAL) == ["PSGA-RK-0001", "ZSJ-MS-0001"]
    assert codes(demo, sharing_type=SharingType.CONDITIONAL, department="zsj") == ["ZSJ-MS-0001"]
    assert codes(demo, open_data=True) == ["SCJG-FR-0001"]
    assert codes(demo, open_data=False, tag="基础库") == ["PSGA-RK-0001"]
    assert codes(demo, text="电话", department="psga", status=ItemStatus.PUBLISHED, level=3) == ["PSGA-RK-0001"]
    assert codes(demo, text="人口", department="scjg") == []
    assert codes(demo, status=ItemStatus.DRAFT) == []


def test_level_filters(session: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    for item in raw["items"]:
        if item["code"] == "ZSJ-MS-0001":
            item["fields"] = [f for f in item["fields"] if f["name"] != "诉求人电话"]
    import_catalog_file(session, write_yaml(tmp_path, raw), actor=OFFICER, by_officer=True)

    assert codes(session, level=1) == ["ZSJ-MS-0001"]
    assert codes(session, max_level=2) == ["ZSJ-MS-0001"]
    assert codes(session, level=3) == ["PSGA-RK-0001", "SCJG-FR-0001"]


def test_pages_are_sorted_and_counted(demo: Session) -> None:
    first = items.search(demo, SearchQuery(sort="-code", page_size=2))
    second = items.search(demo, SearchQuery(sort="-code", page_size=2, page=2))
    beyond = items.search(demo, SearchQuery(sort="-code", page_size=2, page=3))

    assert [item.code for item in first.items] == ["ZSJ-MS-0001", "SCJG-FR-0001"]
    assert [item.code for item in second.items] == ["PSGA-RK-0001"]
    assert (first.total, second.total, beyond.total, beyond.items) == (3, 3, 3, [])
    assert codes(demo, sort="-level") == ["PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"]  # ties by code


def test_search_sees_a_changed_declaration(demo: Session, tmp_path: Path) -> None:
    raw = demo_raw()
    raw["items"][0]["fields"].append({"name": "宗教信仰", "label": "Religion", "level": 4})
    import_catalog_file(demo, write_yaml(tmp_path, raw), actor="test")

    assert codes(demo, text="宗教") == ["PSGA-RK-0001"]
    assert codes(demo, level=4) == ["PSGA-RK-0001"]
