from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from catalog.declarations.service import import_catalog_file
from catalog.items import service as items
from catalog.items.errors import FieldsNotReviewed, IllegalStatusChange, ItemNotFound
from catalog.items.lifecycle import TRANSITIONS, is_legal
from catalog.items.schemas import ItemStatus
from tests.catalog.helpers import approve_every_field, demo_raw, write_yaml

S = ItemStatus
LEGAL = {(S.DRAFT, S.IN_REVIEW), (S.IN_REVIEW, S.PUBLISHED), (S.IN_REVIEW, S.DRAFT), (S.PUBLISHED, S.RETIRED)}


@pytest.mark.parametrize("current", list(ItemStatus))
@pytest.mark.parametrize("target", list(ItemStatus))
def test_only_the_declared_transitions_are_legal(current: ItemStatus, target: ItemStatus) -> None:
    assert is_legal(current, target) == ((current, target) in LEGAL)


def test_every_status_has_its_transitions() -> None:
    assert set(TRANSITIONS) == set(ItemStatus)


@pytest.fixture
def draft_item(session: Session, tmp_path: Path) -> str:
    raw = demo_raw()
    raw["items"] = [item for item in raw["items"] if item["code"] == "ZSJ-MS-0001"]
    raw["items"][0]["status"] = "draft"
    import_catalog_file(session, write_yaml(tmp_path, raw), actor="test")
    return "ZSJ-MS-0001"


def test_an_item_goes_through_review_to_publication_and_retirement(session: Session, draft_item: str) -> None:
    assert items.transition(session, draft_item, S.IN_REVIEW, "steward:zsj").status is S.IN_REVIEW
    assert items.transition(session, draft_item, S.DRAFT, "officer:li").status is S.DRAFT
    items.transition(session, draft_item, S.IN_REVIEW, "steward:zsj")
    with pytest.raises(FieldsNotReviewed, match="not yet approved: 事件编号, 事件类型"):
        items.transition(session, draft_item, S.PUBLISHED, "officer:li")
    approve_every_field(session, draft_item)
    assert items.transition(session, draft_item, S.PUBLISHED, "officer:li").status is S.PUBLISHED
    assert items.transition(session, draft_item, S.RETIRED, "steward:zsj").status is S.RETIRED

    steps = [(c.actor, c.changes["status"]) for c in items.get_history(session, draft_item) if c.action == "status"]
    assert steps == [
        ("steward:zsj", ["draft", "in_review"]),
        ("officer:li", ["in_review", "draft"]),
        ("steward:zsj", ["draft", "in_review"]),
        ("officer:li", ["in_review", "published"]),
        ("steward:zsj", ["published", "retired"]),
    ]


@pytest.mark.parametrize("target", [S.PUBLISHED, S.RETIRED, S.DRAFT])
def test_an_illegal_transition_is_refused_and_changes_nothing(
    session: Session, draft_item: str, target: ItemStatus
) -> None:
    history = items.get_history(session, draft_item)

    with pytest.raises(IllegalStatusChange, match=f"cannot go from draft to {target.value}"):
        items.transition(session, draft_item, target, "steward:zsj")

    assert items.get_item(session, draft_item).status is S.DRAFT
    assert items.get_history(session, draft_item) == history


def test_a_retired_item_stays_retired(session: Session, draft_item: str) -> None:
    approve_every_field(session, draft_item)
    for status in (S.IN_REVIEW, S.PUBLISHED, S.RETIRED):
        items.transition(session, draft_item, status, "steward:zsj")
    for target in ItemStatus:
        with pytest.raises(IllegalStatusChange):
            items.transition(session, draft_item, target, "steward:zsj")


def test_an_unknown_item_is_not_found(session: Session) -> None:
    with pytest.raises(ItemNotFound, match="NOPE-1 does not exist"):
        items.transition(session, "NOPE-1", S.IN_REVIEW, "steward:zsj")
