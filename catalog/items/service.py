"""Item services: register and update declarations, lifecycle transitions, search and read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from catalog.classification import review
from catalog.classification.repository import load_scheme
from catalog.departments.repository import department_ids, source_system_ids
from catalog.items import repository
from catalog.items.errors import (
    FieldsNotReviewed,
    IllegalStatusChange,
    InvalidActor,
    InvalidDeclaration,
    ItemExists,
)
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

ACTOR_MAX_LENGTH = 200  # item_change.actor


@dataclass(frozen=True)
class SaveReport:
    created: int
    updated: int
    unchanged: int


def save_items(session: Session, declarations: Sequence[ItemDeclaration], actor: str) -> SaveReport:
    """Create or update items; all are checked first and nothing is written if any is wrong."""
    check_actor(actor)
    refs = repository.References(department_ids(session), source_system_ids(session))
    stored = repository.load_items(session, [declared.code for declared in declarations])
    problems = check_items(declarations, load_scheme(session), refs.departments, refs.sources)
    problems += check_status_changes({code: item.status for code, item in stored.items()}, declarations)
    if problems:
        raise InvalidDeclaration(problems)
    return _write_items(session, declarations, stored, refs, actor)


def write_checked_items(session: Session, declarations: Sequence[ItemDeclaration], actor: str) -> SaveReport:
    """Write declarations the caller has already checked (as a catalog-file import does, whole)."""
    check_actor(actor)
    refs = repository.References(department_ids(session), source_system_ids(session))
    stored = repository.load_items(session, [declared.code for declared in declarations])
    return _write_items(session, declarations, stored, refs, actor)


def _write_items(
    session: Session,
    declarations: Sequence[ItemDeclaration],
    stored: dict[str, repository.StoredItem],
    refs: repository.References,
    actor: str,
) -> SaveReport:
    new: list[ItemDeclaration] = []
    changed: list[tuple[repository.StoredItem, ItemDeclaration]] = []
    for declared in declarations:
        existing = stored.get(declared.code)
        if existing is None:
            new.append(declared.model_copy(update={"status": declared.status or ItemStatus.DRAFT}))
            continue
        declared = declared.model_copy(update={"status": existing.status})
        if declared != existing.declaration:
            changed.append((existing, declared))
    repository.insert_items(session, new, refs, actor)
    repository.update_items(session, changed, refs, actor)
    session.flush()
    return SaveReport(created=len(new), updated=len(changed), unchanged=len(declarations) - len(new) - len(changed))


def check_actor(actor: str) -> None:
    if not actor or len(actor) > ACTOR_MAX_LENGTH:
        raise InvalidActor(f"the actor must be 1 to {ACTOR_MAX_LENGTH} characters")


def register_item(session: Session, declared: ItemDeclaration, actor: str) -> ItemRead:
    if repository.load_items(session, [declared.code]):
        raise ItemExists(declared.code)
    save_items(session, [declared], actor)
    return get_item(session, declared.code)


def update_item(session: Session, declared: ItemDeclaration, actor: str) -> ItemRead:
    repository.get_by_code_or_raise(session, declared.code)
    save_items(session, [declared], actor)
    return get_item(session, declared.code)


def transition(session: Session, code: str, target: ItemStatus, actor: str) -> ItemRead:
    check_actor(actor)
    stored = repository.get_by_code_or_raise(session, code)
    current = stored.status
    if not is_legal(current, target):
        raise IllegalStatusChange(f"item {code} cannot go from {current.value} to {target.value}")
    if target is ItemStatus.PUBLISHED:
        unreviewed = review.unreviewed_fields(session, stored.id)
        if unreviewed:
            raise FieldsNotReviewed(
                f"item {code} cannot be published before a data officer approves the level of every field; "
                f"not yet approved: {', '.join(unreviewed)}"
            )
    if not repository.set_status(session, stored, target.value, actor):
        raise IllegalStatusChange(f"item {code} changed status while this transition was being made; retry")
    return get_item(session, code)


def get_item(session: Session, code: str) -> ItemRead:
    return repository.to_read(repository.get_by_code_or_raise(session, code))


def get_history(session: Session, code: str) -> list[ItemChangeRead]:
    return repository.history(session, repository.get_by_code_or_raise(session, code).id)


def search(session: Session, query: SearchQuery) -> SearchPage:
    return repository.search(session, query)
