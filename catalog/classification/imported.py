"""A data officer's import of an already classified catalog: every field of the new published (or retired) items
approved as declared, in the review history and the audit as that officer's decision.

Set-based, as a bureau migrates thousands of items at once: one UPDATE and one INSERT ... SELECT of the history
per chunk of items, and one audit row per item naming each field with the level, semantic type and masking rule
approved (the same facts as ``review.decide`` records per field, without its per-field work: a new item has no
proposals to close and no subscriptions to mask).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit import service as audit
from catalog.classification.models import FieldReview
from catalog.classification.review import APPROVED
from catalog.db import utcnow
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ItemDeclaration

IMPORTED_REASON = "imported as already classified by a data officer's catalog import"
CHUNK = 500
_HISTORY_COLUMNS = ("item_id", "field_name", "decided_by", "decided_at", "from_level", "to_level",
                    "from_semantic_type", "to_semantic_type", "from_masking", "to_masking", "reason")  # fmt: skip


def approve_imported(session: Session, items: Sequence[ItemDeclaration], officer: Principal) -> int:
    """Approve every field of ``items`` (just inserted) as stored; returns how many fields."""
    now = utcnow()
    approved = 0
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        ids = list(session.scalars(select(CatalogItem.id).where(CatalogItem.code.in_([d.code for d in chunk]))))
        fields = ItemField.item_id.in_(ids)
        session.execute(
            update(ItemField)
            .where(fields)
            .values(review_status=APPROVED, reviewed_by=officer.subject, reviewed_at=now)
            .execution_options(synchronize_session=False)
        )
        history = select(
            ItemField.item_id, ItemField.name, literal(officer.subject), literal(now, FieldReview.decided_at.type),
            ItemField.level, ItemField.level, ItemField.semantic_type, ItemField.semantic_type,
            ItemField.masking, ItemField.masking, literal(IMPORTED_REASON),
        ).where(fields)  # fmt: skip
        session.execute(insert(FieldReview).from_select(_HISTORY_COLUMNS, history))
        audit.write(session.connection(), [_audit_row(declared, officer) for declared in chunk])
        approved += sum(len(declared.fields) for declared in chunk)
    return approved


def _audit_row(declared: ItemDeclaration, officer: Principal) -> dict[str, object]:
    fields = {f.name: {"level": f.level, "semantic_type": f.semantic_type.value, "masking": str(f.masking)}
              for f in declared.fields}  # fmt: skip
    return audit.event(officer.subject, officer.department, "classification.decide", "done", item_code=declared.code,
                       imported=True, reason=IMPORTED_REASON, fields=fields)  # fmt: skip
