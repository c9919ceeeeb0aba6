"""Item services: register and update declarations, lifecycle transitions, search and read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification import imported, review, stewardship
from catalog.classification.repository import load_scheme
from catalog.classification.stewardship import DeclaredChange
from catalog.departments.repository import department_ids, source_system_ids
from catalog.ingest.manifest import MANIFEST_ATTRIBUTES, is_pulled, rewrite_after_commit
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
    AwaitingReview,
    ItemChangeRead,
    ItemDeclaration,
    ItemRead,
    ItemStatus,
    ItemUpdateRead,
    SearchPage,
    SearchQuery,
)
from catalog.items.validation import check_items, check_new_statuses, check_status_changes

ACTOR_MAX_LENGTH = 200  # item_change.actor


Actor = Principal | str  # a principal, or a name (command line, imports): recorded with every change


@dataclass(frozen=True)
class SaveReport:
    created: int
    updated: int
    unchanged: int
    # Classification changes of approved fields put to the officers (those that only raise protection applied).
    proposals: list[DeclaredChange] = field(default_factory=list)


def save_items(
    session: Session, declarations: Sequence[ItemDeclaration], actor: Actor, *, by_officer: bool = False
) -> SaveReport:
    """Create or update items; all are checked first and nothing is written if any is wrong. ``by_officer``: the
    edge has established that a data officer acts (see ``write_checked_items``)."""
    principal = as_principal(actor)
    refs = repository.References(department_ids(session), source_system_ids(session))
    stored = repository.load_items(session, [declared.code for declared in declarations])
    problems = check_items(declarations, load_scheme(session), refs.departments, refs.sources)
    statuses = {code: item.status for code, item in stored.items()}
    problems += check_status_changes(statuses, declarations)
    problems += check_new_statuses(statuses, declarations, by_officer)
    if problems:
        raise InvalidDeclaration(problems)
    return _write_items(session, declarations, stored, refs, principal, by_officer)


def write_checked_items(
    session: Session, declarations: Sequence[ItemDeclaration], actor: Actor, *, by_officer: bool = False
) -> SaveReport:
    """Write declarations the caller has already checked (as a catalog-file import does, whole). When a data
    officer acts, new items declared published or retired have every field approved as declared, each recorded
    as that officer's decision; anyone's changes to approved fields are governed as a steward's."""
    refs = repository.References(department_ids(session), source_system_ids(session))
    stored = repository.load_items(session, [declared.code for declared in declarations])
    return _write_items(session, declarations, stored, refs, as_principal(actor), by_officer)


def _write_items(
    session: Session,
    declarations: Sequence[ItemDeclaration],
    stored: dict[str, repository.StoredItem],
    refs: repository.References,
    actor: Principal,
    by_officer: bool,
) -> SaveReport:
    new: list[ItemDeclaration] = []
    changed: list[tuple[repository.StoredItem, ItemDeclaration]] = []
    for declared in declarations:
        existing = stored.get(declared.code)
        if existing is None:
            new.append(declared.model_copy(update={"status": declared.status or ItemStatus.DRAFT}))
        elif (kept := declared.model_copy(update={"status": existing.status})) != existing.declaration:
            changed.append((existing, kept))
    changed, proposals = _governed(session, changed)
    repository.insert_items(session, new, refs, actor.subject)
    repository.update_items(session, changed, refs, actor.subject)
    session.flush()
    stewardship.record_declared_changes(session, proposals, actor)
    _audit_writes(session, new, changed, actor)
    if _changes_pipelines(new, changed):
        rewrite_after_commit(session)
    if by_officer:
        _approve_as_imported(session, new, actor)
    unchanged = len(declarations) - len(new) - len(changed)
    return SaveReport(created=len(new), updated=len(changed), unchanged=unchanged, proposals=proposals)


def _changes_pipelines(
    new: Sequence[ItemDeclaration], changed: Sequence[tuple[repository.StoredItem, ItemDeclaration]]
) -> bool:
    """Whether the pipeline manifest changes: a new item pulled at once, or a pulled item's entry changed."""
    if any(is_pulled(declared.status or ItemStatus.DRAFT) for declared in new):
        return True
    return any(
        is_pulled(existing.status)
        and any(getattr(existing.declaration, name) != getattr(declared, name) for name in MANIFEST_ATTRIBUTES)
        for existing, declared in changed
    )


def _governed(
    session: Session, changed: list[tuple[repository.StoredItem, ItemDeclaration]]
) -> tuple[list[tuple[repository.StoredItem, ItemDeclaration]], list[DeclaredChange]]:
    """The changes to store, approved fields keeping their served classification where a change waits for an
    officer, and the classification changes of approved fields."""
    approved = stewardship.approved_field_names(session, [existing.id for existing, _ in changed])
    kept: list[tuple[repository.StoredItem, ItemDeclaration]] = []
    proposals: list[DeclaredChange] = []
    for existing, declared in changed:
        governed, changes = stewardship.govern(existing.declaration, declared, approved[existing.id])
        proposals += changes
        if governed != existing.declaration:
            kept.append((existing, governed))
    return kept, proposals


def _audit_writes(
    session: Session,
    new: Sequence[ItemDeclaration],
    changed: Sequence[tuple[repository.StoredItem, ItemDeclaration]],
    actor: Principal,
) -> None:
    rows = [
        audit.event(actor.subject, actor.department, "item.register", "done", item_code=declared.code,
                    department_code=declared.department, status=(declared.status or ItemStatus.DRAFT).value,
                    fields=len(declared.fields))
        for declared in new
    ]  # fmt: skip
    for existing, declared in changed:
        diff = repository.declaration_diff(existing.declaration, declared)
        rows.append(audit.event(actor.subject, actor.department, "item.update", "done", item_code=declared.code,
                                changed=sorted(name for name in diff if name != "fields"),
                                fields=sorted(diff.get("fields", {}))))  # fmt: skip
    audit.write(session.connection(), rows)


def _approve_as_imported(session: Session, new: Sequence[ItemDeclaration], officer: Principal) -> None:
    """A data officer's import of items that are already published (or retired): each field approved as declared,
    in the review history and the audit as that officer's decision."""
    classified = [declared for declared in new if declared.status in (ItemStatus.PUBLISHED, ItemStatus.RETIRED)]
    imported.approve_imported(session, classified, officer)


def as_principal(actor: Actor) -> Principal:
    if isinstance(actor, Principal):
        check_actor(actor.subject)
        return actor
    check_actor(actor)
    return Principal(actor, None)


def check_actor(actor: str) -> None:
    if not actor or len(actor) > ACTOR_MAX_LENGTH:
        raise InvalidActor(f"the actor must be 1 to {ACTOR_MAX_LENGTH} characters")


def register_item(session: Session, declared: ItemDeclaration, actor: Actor) -> ItemRead:
    """A new item, as a draft: it is published through ``transition`` once every field is approved."""
    if repository.load_items(session, [declared.code]):
        raise ItemExists(declared.code)
    save_items(session, [declared], actor)
    return get_item(session, declared.code)


def update_item(session: Session, declared: ItemDeclaration, actor: Actor) -> ItemUpdateRead:
    """A steward's new declaration of an item; classification changes of approved fields are governed (see
    ``catalog.classification.stewardship``) and listed in the answer."""
    repository.get_by_code_or_raise(session, declared.code)
    report = save_items(session, [declared], actor)
    awaiting = [
        AwaitingReview(field=change.field, level=change.declared.level,
                       semantic_type=change.declared.semantic_type, masking=change.declared.masking,
                       applied=change.kind is stewardship.Change.RAISE)
        for change in report.proposals
    ]  # fmt: skip
    return ItemUpdateRead(**get_item(session, declared.code).model_dump(), awaiting_review=awaiting)


def transition(session: Session, code: str, target: ItemStatus, actor: Actor) -> ItemRead:
    principal = as_principal(actor)
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
    if not repository.set_status(session, stored, target.value, principal.subject):
        raise IllegalStatusChange(f"item {code} changed status while this transition was being made; retry")
    audit.record(session, principal.subject, principal.department, "item.transition", "done", item_code=code,
                 from_status=current.value, to_status=target.value)  # fmt: skip
    if is_pulled(current) != is_pulled(target):
        rewrite_after_commit(session)
    return get_item(session, code)


def get_item(session: Session, code: str) -> ItemRead:
    return repository.to_read(repository.get_by_code_or_raise(session, code))


def get_history(session: Session, code: str) -> list[ItemChangeRead]:
    return repository.history(session, repository.get_by_code_or_raise(session, code).id)


def search(session: Session, query: SearchQuery) -> SearchPage:
    return repository.search(session, query)
