"""The item status machine: draft -> in_review -> published -> retired, and in_review -> draft."""

from __future__ import annotations

from catalog.items.schemas import ItemStatus

TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.DRAFT: frozenset({ItemStatus.IN_REVIEW}),
    ItemStatus.IN_REVIEW: frozenset({ItemStatus.PUBLISHED, ItemStatus.DRAFT}),
    ItemStatus.PUBLISHED: frozenset({ItemStatus.RETIRED}),
    ItemStatus.RETIRED: frozenset(),
}


def is_legal(current: ItemStatus, target: ItemStatus) -> bool:
    return target in TRANSITIONS[current]
