"""Checks of item declarations against the classification scheme and the known departments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from catalog.classification.schemas import ClassificationScheme
from catalog.items.errors import DeclarationProblem
from catalog.items.schemas import ItemDeclaration, ItemStatus


def check_items(
    items: Sequence[ItemDeclaration],
    scheme: ClassificationScheme,
    departments: Collection[str],
    sources: Collection[tuple[str, str]],
) -> list[DeclarationProblem]:
    problems = [
        DeclarationProblem(code, None, "item code is declared more than once")
        for code, count in Counter(item.code for item in items).items()
        if count > 1
    ]
    levels = scheme.level_numbers()
    for item in items:
        if item.department not in departments:
            problems.append(DeclarationProblem(item.code, None, f"unknown department {item.department!r}"))
        elif item.source_system and (item.department, item.source_system) not in sources:
            problems.append(
                DeclarationProblem(
                    item.code,
                    None,
                    f"department {item.department!r} has no source system {item.source_system!r}",
                )
            )
        problems.extend(_check_levels(item, scheme, levels))
    return problems


def _check_levels(item: ItemDeclaration, scheme: ClassificationScheme, levels: set[int]) -> list[DeclarationProblem]:
    problems = []
    known = ", ".join(str(level) for level in sorted(levels))
    for field in item.fields:
        if field.level not in levels:
            problems.append(
                DeclarationProblem(
                    item.code, field.name, f"unknown classification level {field.level} (known: {known})"
                )
            )
            continue
        minimum = scheme.minimum_for(field.semantic_type)
        if field.level < minimum:
            problems.append(
                DeclarationProblem(
                    item.code,
                    field.name,
                    f"level {field.level} is below {minimum}, the lowest allowed for semantic type "
                    f"{field.semantic_type.value}",
                )
            )
    return problems


def check_status_changes(
    current: Mapping[str, ItemStatus], items: Sequence[ItemDeclaration]
) -> list[DeclarationProblem]:
    """A declaration may leave an existing item's status out or repeat it, never change it: status changes
    are lifecycle transitions, each recorded as such (and, later, subject to review rules)."""
    return [
        DeclarationProblem(
            item.code,
            None,
            f"status is {current[item.code].value}; a declaration cannot change it to {item.status.value} "
            "(use the lifecycle commands: datashare catalog submit | publish | withdraw | retire)",
        )
        for item in items
        if item.code in current and item.status is not None and item.status is not current[item.code]
    ]


# A data officer's import may give a new item any status; the fields of published and retired ones are then
# recorded as approved by that officer (a bureau migrating its already classified catalog).
OFFICER_IMPORT_STATUSES = frozenset(ItemStatus)


def check_new_statuses(
    current: Mapping[str, ItemStatus], items: Sequence[ItemDeclaration], by_officer: bool
) -> list[DeclarationProblem]:
    """New items are registered as drafts and published through the lifecycle once every field is approved; only
    a data officer's import may register items in another status (already published ones, say)."""
    allowed = OFFICER_IMPORT_STATUSES if by_officer else frozenset({ItemStatus.DRAFT})
    return [
        DeclarationProblem(
            item.code,
            None,
            f"a new item is registered as a draft, not {item.status.value}, and published once a data officer has "
            "approved every field; only a data officer's import (datashare catalog import --officer) may carry "
            "items that are already published",
        )
        for item in items
        if item.code not in current and item.status is not None and item.status not in allowed
    ]
