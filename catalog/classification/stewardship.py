"""What a steward's declaration may change about a field's classification, and what waits for a data officer.

A field's stored level, semantic type and masking rule are the ones *served* (masking, approval rules, open data,
reports, quality checks). Once a data officer has approved a field, a declaration that changes any of the three:

* only raising protection (a higher level, or a stronger masking rule, with the semantic type unchanged) takes
  effect at once, and the field waits for an officer to confirm it;
* anything else (a lower level, a weaker or merely different masking rule, another semantic type) leaves the
  served values as they are and becomes a proposal in the officers' queue.

A field no officer has approved yet is not served at all (see ``served_fields``), so its declaration may change
freely until the first approval.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification import review
from catalog.classification.models import ClassificationProposal
from catalog.classification.types import MaskingRule
from catalog.items.models import ItemField
from catalog.items.schemas import FieldDeclaration, ItemDeclaration

# How much of a value each rule lets through, from all of it to none. Rules of the same rank (the partial shapes
# and the keyed hash) reveal different things, so a change between them is not a raise.
_MASKING_RANK: dict[MaskingRule, int] = {
    MaskingRule.NONE: 0,
    MaskingRule.ID_NUMBER: 1,
    MaskingRule.PHONE: 1,
    MaskingRule.NAME: 1,
    MaskingRule.ADDRESS: 1,
    MaskingRule.EMAIL: 1,
    MaskingRule.HASH: 1,
    MaskingRule.REDACT: 2,
    MaskingRule.DROP: 3,
}


class Change(StrEnum):
    NONE = "none"
    RAISE = "raise"  # only more protection: applies at once
    PROPOSAL = "proposal"  # anything else: waits for an officer


@dataclass(frozen=True)
class Classification:
    level: int
    semantic_type: str
    masking: str

    @classmethod
    def of(cls, field: FieldDeclaration) -> Classification:
        return cls(field.level, field.semantic_type.value, str(field.masking))


@dataclass(frozen=True)
class DeclaredChange:
    """A steward's change of an approved field's classification, as declared."""

    item_code: str
    field: str
    served: Classification
    declared: Classification
    kind: Change


def classify_change(served: Classification, declared: Classification) -> Change:
    if served == declared:
        return Change.NONE
    stronger_masking = _MASKING_RANK[MaskingRule(declared.masking)] > _MASKING_RANK[MaskingRule(served.masking)]
    raises = (
        declared.semantic_type == served.semantic_type
        and declared.level >= served.level
        and (declared.masking == served.masking or stronger_masking)
    )
    return Change.RAISE if raises else Change.PROPOSAL


def govern(
    old: ItemDeclaration, new: ItemDeclaration, approved: set[str]
) -> tuple[ItemDeclaration, list[DeclaredChange]]:
    """The declaration to store for a steward's ``new`` one (approved fields keep their served classification
    where the change waits for an officer) and the classification changes of approved fields it holds."""
    served = {field.name: Classification.of(field) for field in old.fields if field.name in approved}
    changes: list[DeclaredChange] = []
    fields: list[FieldDeclaration] = []
    for field in new.fields:
        before = served.get(field.name)
        declared = Classification.of(field)
        kind = Change.NONE if before is None else classify_change(before, declared)
        if before is not None and kind is not Change.NONE:
            changes.append(DeclaredChange(new.code, field.name, before, declared, kind))
        if before is not None and kind is Change.PROPOSAL:
            field = field.model_copy(update={"level": before.level, "semantic_type": before.semantic_type,
                                             "masking": MaskingRule(before.masking)})  # fmt: skip
        fields.append(field)
    return new.model_copy(update={"fields": fields}), changes


def approved_field_names(session: Session, item_ids: Iterable[int]) -> dict[int, set[str]]:
    """Per item, the fields a data officer has approved at least once (their stored values are served)."""
    ids = sorted(set(item_ids))
    found: dict[int, set[str]] = {item_id: set() for item_id in ids}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(ItemField.item_id, ItemField.name).where(
                ItemField.item_id.in_(ids[start : start + 500]), ItemField.reviewed_at.is_not(None)
            )
        )
        for item_id, name in rows:
            found[item_id].add(name)
    return found


def never_approved(session: Session, item_id: int, names: Sequence[str]) -> list[str]:
    """Of ``names``, the item's fields no data officer has approved yet: they are not served (nor subscribed to)
    until one does."""
    approved = approved_field_names(session, [item_id])[item_id]
    return [name for name in names if name not in approved]


def record_declared_changes(session: Session, changes: Sequence[DeclaredChange], actor: Principal) -> int:
    """Put a steward's classification changes of approved fields (already governed, so stored values are served)
    into the officers' queue as proposals, audited: raises that applied at once, and changes that wait. A raised
    level masks the field for subscriptions approved below it from the next read, as an officer's raise does.
    The same open proposal is not made twice (an import repeated, a form sent again). Returns how many are new."""
    if not changes:
        return 0
    stored = review.fields_of(session, [(change.item_code, change.field) for change in changes])
    existing = _open_steward_proposals(session, {field.item_id for field in stored.values()})
    created = 0
    for change in changes:
        field = stored[(change.item_code, change.field)]
        wanted = (field.item_id, change.field, change.declared)
        if wanted in existing:
            continue
        applied = change.kind is Change.RAISE
        reason = "raised in the item's declaration" if applied else "changed in the item's declaration"
        proposal_id = review.add_proposal(
            session, field, "steward", change.declared.level, change.declared.semantic_type, actor.subject,
            reason=reason, proposed_masking=change.declared.masking,
        )  # fmt: skip
        audit.record(session, actor.subject, actor.department, "classification.propose", "done",
                     item_code=change.item_code, field=change.field, proposal_id=proposal_id, applied=applied,
                     served=asdict(change.served), declared=asdict(change.declared))  # fmt: skip
        existing.add(wanted)
        created += 1
    raised = [review.Raised(c.item_code, c.field, c.served.level, c.declared.level)
              for c in changes if c.kind is Change.RAISE and c.declared.level > c.served.level]  # fmt: skip
    review.propagate_raised(session, raised, stored, actor, review.DecisionReport())
    return created


def _open_steward_proposals(session: Session, item_ids: set[int]) -> set[tuple[int, str, Classification]]:
    rows = session.execute(
        select(ClassificationProposal.item_id, ClassificationProposal.field_name, ClassificationProposal.proposed_level,
               ClassificationProposal.proposed_semantic_type, ClassificationProposal.proposed_masking)
        .where(ClassificationProposal.item_id.in_(item_ids), ClassificationProposal.status == review.OPEN,
               ClassificationProposal.source == "steward")
    )  # fmt: skip
    return {
        (item_id, name, Classification(level, semantic, masking or ""))
        for item_id, name, level, semantic, masking in rows
    }
