"""Item services: register and update declarations, lifecycle transitions, search and read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalog.classification.repository import load_scheme
from catalog.departments.repository import department_ids, source_system_ids
from catalog.items import repository
from catalog.items.errors import DeclarationProblem, IllegalStatusChange, InvalidDeclaration
from catalog.items.lifecycle import is_legal
from catalog.items.schemas import (
    ItemChangeRead,
    ItemDeclaration,
    ItemRead,
    ItemStatus,
    SearchPage,
    SearchQuery,
)
from catalog.items.validation import check_items, check_status_changes


@dataclass(frozen=True)
class SaveReport:
    created: int
    updated: int
    unchanged: int


def save_items(session: Session, declarations: Sequence[ItemDeclaration], actor: str) -> SaveReport:
    """Create or update items; all are checked first and nothing is written if any is wrong."""
    refs = repository.References(department_ids(session), source_system_ids(session))
    problems = check_items(declarations, load_scheme(session), refs.departments, refs.sources)
    stored = repository.load_items(session, [declared.code for declared in declarations])
    current_status = {code: item.declaration.status for code, item in stored.items()}
    problems += check_status_changes(current_status, declarations)
    if problems:
        raise InvalidDeclaration(problems)
    new = [declared for declared in declarations if declared.code not in stored]
    changed = [
        (stored[declared.code], declared)
        for declared in declarations
        if declared.code in stored and stored[declared.code].declaration != declared
    ]
    repository.insert_items(session, new, refs, actor)
    repository.update_items(session, changed, refs, actor)
    session.flush()
    return SaveReport(
        created=len(new), updated=len(changed), unchanged=len(declarations) - len(new) - len(changed)
    )


def register_item(session: Session, declared: ItemDeclaration, actor: str) -> ItemRead:
    if repository.load_items(session, [declared.code]):
        raise InvalidDeclaration(
            [DeclarationProblem(declared.code, None, "an item with this code already exists")]
        )
    save_items(session, [declared], actor)
    return get_item(session, declared.code)


def update_item(session: Session, declared: ItemDeclaration, actor: str) -> ItemRead:
    repository.get_by_code_or_raise(session, declared.code)
    save_items(session, [declared], actor)
    return get_item(session, declared.code)


def transition(session: Session, code: str, target: ItemStatus, actor: str) -> ItemRead:
    stored = repository.get_by_code_or_raise(session, code)
    current = stored.declaration.status
    if not is_legal(current, target):
        raise IllegalStatusChange(f"item {code} cannot go from {current.value} to {target.value}")
    repository.set_status(session, stored, target.value, actor)
    return get_item(session, code)


def get_item(session: Session, code: str) -> ItemRead:
    return repository.to_read(repository.get_by_code_or_raise(session, code))


def get_history(session: Session, code: str) -> list[ItemChangeRead]:
    return repository.history(session, repository.get_by_code_or_raise(session, code).id)


def search(session: Session, query: SearchQuery) -> SearchPage:
    return repository.search(session, query)
