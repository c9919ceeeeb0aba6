from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from catalog.items import service as items
from catalog.items.errors import ItemExists, ItemNotFound
from catalog.items.schemas import ItemDeclaration
from tests.catalog.helpers import demo_file, import_demo


def housing_item() -> ItemDeclaration:
    return ItemDeclaration.model_validate(
        {
            "code": "ZJJ-FW-0001",
            "title": "房屋租赁登记",
            "department": "zjj",
            "update_frequency": "@weekly",
            "sharing_type": "conditional",
            "fields": [
                {"name": "租赁合同编号", "key": True, "semantic_type": "identifier", "level": 2},
                {"name": "承租人证件号码", "semantic_type": "resident_id", "level": 4},
            ],
        }
    )


def test_register_creates_a_draft_item_with_its_level(session: Session) -> None:
    import_demo(session)

    item = items.register_item(session, housing_item(), actor="steward:zjj")

    assert (item.status.value, item.level, item.department) == ("draft", 4, "zjj")
    assert [c.action for c in items.get_history(session, "ZJJ-FW-0001")] == ["created"]


def test_register_refuses_an_existing_code(session: Session) -> None:
    import_demo(session)
    existing = demo_file().items[0]

    with pytest.raises(ItemExists, match=f"catalog item {existing.code} already exists"):
        items.register_item(session, existing, actor="steward:psga")


def test_update_changes_the_declaration_and_refuses_unknown_items(session: Session) -> None:
    import_demo(session)
    items.register_item(session, housing_item(), actor="steward:zjj")

    changed = housing_item().model_copy(update={"title": "房屋租赁登记备案"})
    assert items.update_item(session, changed, actor="steward:zjj").title == "房屋租赁登记备案"

    with pytest.raises(ItemNotFound):
        items.update_item(session, changed.model_copy(update={"code": "ZJJ-FW-0404"}), actor="steward:zjj")


def test_an_unchanged_update_records_nothing(session: Session) -> None:
    import_demo(session)
    items.register_item(session, housing_item(), actor="steward:zjj")

    items.update_item(session, housing_item(), actor="steward:zjj")

    assert len(items.get_history(session, "ZJJ-FW-0001")) == 1
