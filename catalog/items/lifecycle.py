"""The item status machine: draft -> in_review -> published -> retired, and in_review -> draft."""

from __future__ import annotations

from collections import deque

from catalog.items.schemas import ItemStatus

TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.DRAFT: frozenset({ItemStatus.IN_REVIEW}),
    ItemStatus.IN_REVIEW: frozenset({ItemStatus.PUBLISHED, ItemStatus.DRAFT}),
    ItemStatus.PUBLISHED: frozenset({ItemStatus.RETIRED}),
    ItemStatus.RETIRED: frozenset(),
}


def is_legal(current: ItemStatus, target: ItemStatus) -> bool:
    return target in TRANSITIONS[current]


def path_between(current: ItemStatus, target: ItemStatus) -> list[ItemStatus] | None:
    """The shortest run of legal transitions from current to target ([] if equal, None if none)."""
    previous: dict[ItemStatus, ItemStatus | None] = {current: None}
    queue = deque([current])
    while queue:
        status = queue.popleft()
        if status is target:
            steps: list[ItemStatus] = []
            while previous[status] is not None:
                steps.append(status)
                status = previous[status]  # type: ignore[assignment]
            return steps[::-1]
        for following in TRANSITIONS[status]:
            if following not in previous:
                previous[following] = status
                queue.append(following)
    return None
