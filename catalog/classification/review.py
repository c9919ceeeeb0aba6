"""Classification review: proposals (from detection and from stewards), officers' decisions on fields, the
review queue, and the propagation of a raised level to the subscriptions that read the field.

A field is ``pending`` until a data officer approves its level and semantic type (as declared, or changed with a
reason); a steward's change of either, or a new proposal, makes it pending again. An item is published only when
all its fields are approved. Every decision is kept (``field_review``) and audited in its transaction.

When a field's level rises above what an active subscription was approved for, the field is masked for that
subscription from the next read (the change log tells every API process within its refresh interval) and
stays masked (``masked_fields``) until the subscription is re-approved, even if the level falls again; the
consumer and the provider get a notification.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, and_, case, func, insert, or_, select, tuple_, union_all, update
from sqlalchemy.orm import Session

from catalog.access.changes import ITEM, note_change
from catalog.audit import service as audit
from catalog.classification.detection import FieldProfile
from catalog.classification.models import ClassificationLevel, ClassificationProposal, FieldReview, SemanticTypeRule
from catalog.classification.types import MaskingRule, SemanticType, default_masking
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.errors import DomainError, NotFound
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ITEM_CODE_PATTERN
from catalog.notifications.service import notify_all
from catalog.subscriptions.models import Subscription

if TYPE_CHECKING:
    from catalog.access.service import Principal

PENDING, APPROVED = "pending", "approved"
OPEN, DECIDED = "open", "decided"
CHUNK = 500  # codes per IN list
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: refused as invalid, never a database error


class InvalidDecision(DomainError):
    code = "invalid_review_decision"


class FieldNotFound(NotFound):
    code = "field_not_found"


class FieldDecision(BaseModel):
    """An officer's decision on one field: approve it as it stands (no level, semantic type or masking rule), or
    change any of them. A reason is required for a change and for an approval below the level a proposal
    suggests."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=64, pattern=ITEM_CODE_PATTERN)
    field: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    level: int | None = Field(default=None, ge=1, le=99)
    semantic_type: SemanticType | None = None
    masking: MaskingRule | None = Field(
        default=None, description="The masking rule; by default the field's, or the new semantic type's default."
    )
    reason: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=64, pattern=ITEM_CODE_PATTERN)
    field: str = Field(min_length=1, max_length=128, pattern=NO_NUL)
    level: int = Field(ge=1, le=99)
    semantic_type: SemanticType | None = None
    masking: MaskingRule | None = None
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


@dataclass(frozen=True)
class Raised:
    item: str
    field: str
    from_level: int
    to_level: int


@dataclass
class DecisionReport:
    decided: int = 0
    changed: int = 0
    raised: list[Raised] = field(default_factory=list)
    subscriptions_masked: int = 0
    notifications: int = 0


@dataclass(frozen=True)
class _StoredField:
    id: int
    item_id: int
    item_code: str
    department_id: int
    name: str
    level: int
    semantic_type: str
    masking: str


# --- proposals ---------------------------------------------------------------------------------------------


def propose(session: Session, body: ProposalCreate, actor: Principal) -> int:
    """A steward's proposal for a field of their department's item (the Casbin check is the edge's)."""
    stored = fields_of(session, [(body.item, body.field)])[(body.item, body.field)]
    semantic_type = (body.semantic_type or SemanticType(stored.semantic_type)).value
    masking = None if body.masking is None else body.masking.value
    proposal_id = add_proposal(session, stored, "steward", body.level, semantic_type, actor.subject,
                               reason=body.reason.strip(), proposed_masking=masking)  # fmt: skip
    audit.record(session, actor.subject, actor.department, "classification.propose", "done", item_code=body.item,
                 field=body.field, level=body.level, semantic_type=semantic_type, masking=masking,
                 proposal_id=proposal_id)  # fmt: skip
    return proposal_id


def record_findings(session: Session, item_id: int, profiles: dict[str, FieldProfile], batch_id: int | None) -> int:
    """Proposals from automatic detection on a new batch: one per field whose finding differs from what is
    stored (an open proposal with the same suggestion only gets the new evidence). Returns how many are new."""
    findings = {name: profile.finding for name, profile in profiles.items() if profile.finding is not None}
    if not findings:
        return 0
    item_code = session.scalar(select(CatalogItem.code).where(CatalogItem.id == item_id))
    stored = fields_of(session, [(str(item_code), name) for name in findings])
    open_ones = {
        (proposal.field_name, proposal.proposed_level, proposal.proposed_semantic_type): proposal
        for proposal in session.scalars(
            select(ClassificationProposal).where(
                ClassificationProposal.item_id == item_id,
                ClassificationProposal.source == "detection",
                ClassificationProposal.status == OPEN,
            )
        )
    }
    created = 0
    for name, finding in findings.items():
        evidence = {
            "detected_type": finding.detected_type.value,
            "share": round(finding.share, 4),
            "examples": list(finding.examples),
            "reasons": [reason.value for reason in finding.reasons],
            "batch_id": batch_id,
        }
        key = (name, finding.suggested_level, finding.detected_type.value)
        if key in open_ones:
            open_ones[key].evidence = evidence
            continue
        add_proposal(session, stored[(str(item_code), name)], "detection", finding.suggested_level,
                      finding.detected_type.value, "detection", evidence=evidence)  # fmt: skip
        created += 1
    return created


def add_proposal(
    session: Session, stored: _StoredField, source: str, level: int, semantic_type: str, by: str, **values: Any
) -> int:
    proposal = ClassificationProposal(item_id=stored.item_id, field_name=stored.name, source=source,
                                      proposed_level=level, proposed_semantic_type=semantic_type, created_by=by,
                                      created_at=utcnow(), status=OPEN, **values)  # fmt: skip
    session.add(proposal)
    session.execute(update(ItemField).where(ItemField.id == stored.id).values(review_status=PENDING))
    session.flush()
    return proposal.id


# --- decisions -----------------------------------------------------------------------------------------------


def decide(session: Session, decisions: Sequence[FieldDecision], officer: Principal) -> DecisionReport:
    """Officers' decisions on many fields at once, all or none: every field approved at the given (or its
    current) level and semantic type, its open proposals closed, the history and the audit written, and raised
    levels propagated to the subscriptions that read the fields."""
    if not decisions:
        return DecisionReport()
    keys = [(decision.item, decision.field) for decision in decisions]
    if len(set(keys)) != len(keys):
        raise InvalidDecision("a field may be decided once per batch")
    stored = fields_of(session, keys)
    suggested = _suggested_levels(session, {field.item_id for field in stored.values()})
    levels, minimums = _scheme(session)
    now = utcnow()
    reviews, updates, problems = [], [], []
    for decision in decisions:
        current = stored[(decision.item, decision.field)]
        to = _decided(decision, current)
        suggestion = suggested.get((current.item_id, current.name))
        problem = _problem(decision, current, to, suggestion, levels, minimums)
        if problem:
            problems.append(f"{decision.item}.{decision.field}: {problem}")
            continue
        updates.append({"id": current.id, "level": to.level, "semantic_type": to.semantic_type,
                        "masking": to.masking, "review_status": APPROVED, "reviewed_by": officer.subject,
                        "reviewed_at": now})  # fmt: skip
        reviews.append({"item_id": current.item_id, "field_name": current.name, "decided_by": officer.subject,
                        "decided_at": now, "from_level": current.level, "to_level": to.level,
                        "from_semantic_type": current.semantic_type, "to_semantic_type": to.semantic_type,
                        "from_masking": current.masking, "to_masking": to.masking, "suggested_level": suggestion,
                        "reason": (decision.reason or "").strip() or None})  # fmt: skip
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidDecision("; ".join(problems[:5]) + more)
    return _apply(session, stored, updates, reviews, officer, now)


@dataclass(frozen=True)
class _Decided:
    level: int
    semantic_type: str
    masking: str


def _decided(decision: FieldDecision, current: _StoredField) -> _Decided:
    """The level, semantic type and masking rule a decision leaves the field with: those it names, else the
    field's; a new semantic type brings its default masking rule unless the decision names one."""
    semantic_type = (decision.semantic_type or SemanticType(current.semantic_type)).value
    if decision.masking is not None:
        masking = decision.masking.value
    elif semantic_type == current.semantic_type:
        masking = current.masking
    else:
        masking = default_masking(SemanticType(semantic_type)).value
    return _Decided(decision.level if decision.level is not None else current.level, semantic_type, masking)


def _problem(
    decision: FieldDecision, current: _StoredField, to: _Decided, suggestion: int | None, levels: set[int],
    minimums: dict[str, int],
) -> str | None:  # fmt: skip
    reason = (decision.reason or "").strip()
    if to.level not in levels:
        return f"level {to.level} is not a level of the scheme"
    if to.level < minimums.get(to.semantic_type, 0):
        return f"a {to.semantic_type} field is at least level {minimums[to.semantic_type]}"
    if to.level >= 3 and to.masking == MaskingRule.NONE:
        return "a field at level 3 or above needs a masking rule other than none"
    changed = (to.level, to.semantic_type, to.masking) != (current.level, current.semantic_type, current.masking)
    if changed and not reason:
        return "a change needs a reason"
    if suggestion is not None and to.level < suggestion and not reason:
        return f"approving below the suggested level {suggestion} needs a reason"
    return None


def _apply(
    session: Session, stored: dict[tuple[str, str], _StoredField], updates: list[dict[str, Any]],
    reviews: list[dict[str, Any]], officer: Principal, now: datetime,
) -> DecisionReport:  # fmt: skip
    session.execute(update(ItemField), updates)
    item_ids = sorted({field.item_id for field in stored.values()})
    for chunk in _chunks(item_ids):
        highest = select(func.max(ItemField.level)).where(ItemField.item_id == CatalogItem.id).scalar_subquery()
        session.execute(update(CatalogItem).where(CatalogItem.id.in_(chunk)).values(level=highest, updated_at=now))
    review_ids = _insert_reviews(session, reviews)
    by_field = dict(zip([(row["item_id"], row["field_name"]) for row in reviews], review_ids, strict=True))
    _close_proposals(session, by_field, officer, now)
    for item_id in item_ids:
        note_change(session, ITEM, item_id)
    codes = {field.item_id: field.item_code for field in stored.values()}
    audit_rows = [
        audit.event(officer.subject, officer.department, "classification.decide", "done",
                    item_code=codes[row["item_id"]], field=row["field_name"], review_id=by_field[(row["item_id"],
                    row["field_name"])], from_level=row["from_level"], to_level=row["to_level"],
                    from_semantic_type=row["from_semantic_type"], to_semantic_type=row["to_semantic_type"],
                    from_masking=row["from_masking"], to_masking=row["to_masking"], reason=row["reason"])
        for row in reviews
    ]  # fmt: skip
    audit.write(session.connection(), audit_rows)
    raised = [Raised(codes[r["item_id"]], r["field_name"], r["from_level"], r["to_level"])
              for r in reviews if r["to_level"] > r["from_level"]]  # fmt: skip
    report = DecisionReport(decided=len(reviews), raised=raised)
    report.changed = sum((r["to_level"], r["to_semantic_type"], r["to_masking"])
                         != (r["from_level"], r["from_semantic_type"], r["from_masking"]) for r in reviews)  # fmt: skip
    propagate_raised(session, raised, stored, officer, report)
    session.flush()
    return report


def _insert_reviews(session: Session, reviews: list[dict[str, Any]]) -> list[int]:
    """Insert the history rows; their ids, in order.

    render_nulls: every row has the same columns, so the rows go in batched statements; without it the ORM sends
    a statement per run of rows with the same None values (thousands in a large mixed batch) and splices their
    RETURNING rows together, copying all rows so far each time (35 s for 20,000 decisions). On PostgreSQL the
    ids are drawn from the sequence first and the rows sent as a plain executemany: psycopg parses each large
    multi-row INSERT ... RETURNING in Python, uncached (3 s for 20,000 rows, against 0.3 s so)."""
    if session.get_bind().dialect.name != "postgresql":
        returning = insert(FieldReview).returning(FieldReview.id, sort_by_parameter_order=True)
        return list(session.scalars(returning.execution_options(render_nulls=True), reviews).all())
    sequence = func.pg_get_serial_sequence(FieldReview.__tablename__, "id")
    ids = list(session.scalars(select(func.nextval(sequence)).select_from(func.generate_series(1, len(reviews)))))
    rows = [{"id": review_id, **row} for review_id, row in zip(ids, reviews, strict=True)]
    session.execute(insert(FieldReview).execution_options(render_nulls=True), rows)
    return ids


def _close_proposals(session: Session, by_field: dict[tuple[int, str], int], officer: Principal, now: datetime) -> None:
    open_ones = session.execute(
        select(ClassificationProposal.id, ClassificationProposal.item_id, ClassificationProposal.field_name).where(
            ClassificationProposal.status == OPEN,
            ClassificationProposal.item_id.in_({item_id for item_id, _ in by_field}),
        )
    ).all()
    closing = [
        {"id": proposal_id, "status": DECIDED, "decided_by": officer.subject, "decided_at": now,
         "review_id": by_field[(item_id, name)]}
        for proposal_id, item_id, name in open_ones
        if (item_id, name) in by_field
    ]  # fmt: skip
    if closing:
        session.execute(update(ClassificationProposal), closing)


def propagate_raised(
    session: Session, raised: list[Raised], stored: dict[tuple[str, str], _StoredField], officer: Principal,
    report: DecisionReport,
) -> None:  # fmt: skip
    """Mask each raised field for the active subscriptions approved below its new level, from now on."""
    if not raised:
        return
    by_item: dict[int, dict[str, int]] = defaultdict(dict)
    for change in raised:
        by_item[stored[(change.item, change.field)].item_id][change.field] = change.to_level
    providers = {field.item_id: field.department_id for field in stored.values()}
    codes = {field.item_id: field.item_code for field in stored.values()}
    active = session.execute(
        select(Subscription.id, Subscription.item_id, Subscription.consumer_department_id, Subscription.fields,
               Subscription.approved_level, Subscription.masked_fields)
        .where(Subscription.item_id.in_(list(by_item)), Subscription.status == "active")
    ).all()  # fmt: skip
    masked_updates, notices, audit_rows = [], [], []
    for sub_id, item_id, consumer_id, fields, approved, already in active:
        newly = sorted(name for name, level in by_item[item_id].items()
                       if name in fields and level > (approved or 0) and name not in already)  # fmt: skip
        if not newly:
            continue
        masked_updates.append({"id": sub_id, "masked_fields": sorted({*already, *newly}), "updated_at": utcnow()})
        message = (
            f"{codes[item_id]} 的字段 {'、'.join(newly)} 的分级已高于订阅 {sub_id} 获批的级别 {approved}，"
            "自即日起脱敏提供；订阅方可申请重新审批。\n"
            f"{codes[item_id]}: field(s) {', '.join(newly)} now classified above subscription {sub_id}'s "
            f"approved level {approved}; they are masked from now on. The consumer may ask for re-approval."
        )
        detail = {"fields": newly, "levels": {name: by_item[item_id][name] for name in newly},
                  "approved_level": approved}  # fmt: skip
        for department_id in {consumer_id, providers[item_id]}:
            notices.append({"department_id": department_id, "kind": "classification_raised",
                            "item_code": codes[item_id], "subscription_id": sub_id, "message": message,
                            "detail": detail})  # fmt: skip
        audit_rows.append(audit.event(officer.subject, officer.department, "subscription.masked", "done",
                                      item_code=codes[item_id], subscription_id=sub_id,
                                      fields_masked=newly))  # fmt: skip
    audit.write(session.connection(), audit_rows)
    if masked_updates:
        session.execute(update(Subscription), masked_updates)
    notify_all(session, notices)
    report.subscriptions_masked, report.notifications = len(masked_updates), len(notices)


# --- reads ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    item: str
    department: str
    item_status: str
    field: str
    label: str
    level: int
    semantic_type: str
    suggested_level: int | None
    proposals: list[dict[str, Any]]
    waiting_since: datetime


@dataclass(frozen=True)
class QueueFilter:
    department: str | None = None
    semantic_type: str | None = None
    level: int | None = None
    finding: str | None = None  # a detected semantic type; "any" for fields with a detection proposal
    item: str | None = None  # one item's pending fields
    limit: int = 100
    offset: int = 0


def queue(session: Session, wanted: QueueFilter) -> tuple[int, list[QueueEntry]]:
    """Pending fields across departments, oldest first (by their oldest open proposal, else the item's last
    change), with their open proposals; and how many match."""
    statement = _queue_statement(wanted)
    total = int(session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0)
    rows = session.execute(statement.limit(wanted.limit).offset(wanted.offset)).all()
    proposals = _open_proposals(session, {(row.item_id, row.name) for row in rows})
    entries = []
    for row in rows:
        found = proposals.get((row.item_id, row.name), [])
        suggested = max((proposal["level"] for proposal in found), default=None)
        entries.append(QueueEntry(row.code, row.department, row.status, row.name, row.label, row.level,
                                  row.semantic_type, suggested, found, row.waiting_since))  # fmt: skip
    return total, entries


def _oldest_open_proposals() -> Any:
    """Each field with an open proposal, and when its oldest one was made."""
    return (
        select(ClassificationProposal.item_id, ClassificationProposal.field_name,
               func.min(ClassificationProposal.created_at).label("since"))
        .where(ClassificationProposal.status == OPEN)
        .group_by(ClassificationProposal.item_id, ClassificationProposal.field_name)
        .subquery()
    )  # fmt: skip


def _queue_statement(wanted: QueueFilter) -> Select[Any]:
    oldest = _oldest_open_proposals()
    waiting = func.coalesce(oldest.c.since, CatalogItem.updated_at).label("waiting_since")
    columns: list[Any] = [
        ItemField.item_id,
        ItemField.name,
        ItemField.label,
        ItemField.level,
        ItemField.semantic_type,
        CatalogItem.code,
        CatalogItem.status,
        Department.code.label("department"),
        waiting,
    ]
    statement = (
        select(*columns)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .join(Department, Department.id == CatalogItem.department_id)
        .outerjoin(oldest, and_(oldest.c.item_id == ItemField.item_id, oldest.c.field_name == ItemField.name))
        .where(or_(ItemField.review_status == PENDING, oldest.c.since.is_not(None)))
        .order_by(waiting, CatalogItem.code, ItemField.position)
    )  # fmt: skip
    return statement.where(*_item_conditions(wanted), *_field_conditions(wanted))


def _item_conditions(wanted: QueueFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.department:
        conditions.append(
            CatalogItem.department_id.in_(select(Department.id).where(Department.code == wanted.department))
        )
    if wanted.item:
        conditions.append(CatalogItem.code == wanted.item)
    return conditions


def _field_conditions(wanted: QueueFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.semantic_type:
        conditions.append(ItemField.semantic_type == wanted.semantic_type)
    if wanted.level is not None:
        conditions.append(ItemField.level == wanted.level)
    if wanted.finding:
        # The fields of the open detection proposals, found once: as a correlated EXISTS, SQLite looked through
        # every open proposal for each field (its status index), 4 s for a queue of 20,000 fields.
        detected = select(ClassificationProposal.item_id, ClassificationProposal.field_name).where(
            ClassificationProposal.status == OPEN,
            ClassificationProposal.source == "detection",
        )
        if wanted.finding != "any":
            detected = detected.where(ClassificationProposal.proposed_semantic_type == wanted.finding)
        conditions.append(tuple_(ItemField.item_id, ItemField.name).in_(detected))
    return conditions


@dataclass(frozen=True)
class PendingItem:
    item: str
    department: str
    item_status: str
    pending_fields: int
    with_proposals: int
    waiting_since: datetime


def pending_items(session: Session, wanted: QueueFilter) -> tuple[int, list[PendingItem]]:
    """The queue by item: items with pending fields, oldest first, how many of their fields wait and how many
    of those have an open proposal; the same filters as ``queue``. One statement for the page and the total.

    The waiting fields are counted per item before anything is joined to them, in two disjoint parts that each
    start from an index: the pending fields (``ix_item_field_review_status``) and the reviewed fields with an open
    proposal (few). A field waits since its oldest open proposal, else since its item's last change."""
    oldest = _oldest_open_proposals()
    on_proposal = and_(oldest.c.item_id == ItemField.item_id, oldest.c.field_name == ItemField.name)
    conditions = _field_conditions(wanted)
    waiting_fields = union_all(
        select(ItemField.item_id, oldest.c.since).outerjoin(oldest, on_proposal)
        .where(ItemField.review_status == PENDING, *conditions),
        select(ItemField.item_id, oldest.c.since).join(oldest, on_proposal)
        .where(ItemField.review_status != PENDING, *conditions),
    ).subquery()  # fmt: skip
    per_item = (
        select(waiting_fields.c.item_id, func.count().label("pending"),
               func.count(waiting_fields.c.since).label("with_proposals"),
               func.min(waiting_fields.c.since).label("proposed_since"))
        .group_by(waiting_fields.c.item_id)
        .subquery()
    )  # fmt: skip
    some_without_proposal = per_item.c.pending > per_item.c.with_proposals
    since = case(
        (and_(some_without_proposal, or_(per_item.c.proposed_since.is_(None),
                                         CatalogItem.updated_at < per_item.c.proposed_since)), CatalogItem.updated_at),
        else_=per_item.c.proposed_since,
    ).label("since")  # fmt: skip
    statement = (
        select(CatalogItem.code, Department.code.label("department"), CatalogItem.status, per_item.c.pending,
               per_item.c.with_proposals, since, func.count().over().label("total"))
        .join(CatalogItem, CatalogItem.id == per_item.c.item_id)
        .join(Department, Department.id == CatalogItem.department_id)
        .where(*_item_conditions(wanted))
    )  # fmt: skip
    rows = session.execute(statement.order_by(since, CatalogItem.code).limit(wanted.limit).offset(wanted.offset)).all()
    if rows:
        total = int(rows[0].total)
    else:  # past the last page: the total is counted on its own
        total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
    return total, [PendingItem(r.code, r.department, r.status, r.pending, r.with_proposals, r.since) for r in rows]


def _open_proposals(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    found: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    if not keys:
        return found
    for proposal in session.scalars(
        select(ClassificationProposal)
        .where(ClassificationProposal.status == OPEN, ClassificationProposal.item_id.in_({i for i, _ in keys}))
        .order_by(ClassificationProposal.id)
    ):
        if (proposal.item_id, proposal.field_name) in keys:
            found[(proposal.item_id, proposal.field_name)].append(
                {
                    "id": proposal.id,
                    "source": proposal.source,
                    "level": proposal.proposed_level,
                    "semantic_type": proposal.proposed_semantic_type,
                    "masking": proposal.proposed_masking,
                    "reason": proposal.reason,
                    "evidence": proposal.evidence,
                    "created_by": proposal.created_by,
                    "created_at": proposal.created_at,
                }
            )
    return found


def history(session: Session, item_code: str) -> list[dict[str, Any]]:
    """Every decision on the item's fields, oldest first."""
    rows = session.execute(
        select(FieldReview).join(CatalogItem, CatalogItem.id == FieldReview.item_id)
        .where(CatalogItem.code == item_code).order_by(FieldReview.id)
    ).scalars()  # fmt: skip
    return [
        {"id": review.id, "field": review.field_name, "decided_by": review.decided_by, "decided_at": review.decided_at,
         "from_level": review.from_level, "to_level": review.to_level,
         "from_semantic_type": review.from_semantic_type, "to_semantic_type": review.to_semantic_type,
         "from_masking": review.from_masking, "to_masking": review.to_masking,
         "suggested_level": review.suggested_level, "reason": review.reason}
        for review in rows
    ]  # fmt: skip


def unreviewed_fields(session: Session, item_id: int) -> list[str]:
    return list(
        session.scalars(
            select(ItemField.name)
            .where(ItemField.item_id == item_id, ItemField.review_status != APPROVED)
            .order_by(ItemField.position)
        )
    )


# --- helpers -------------------------------------------------------------------------------------------------


def fields_of(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], _StoredField]:
    wanted = set(keys)
    found: dict[tuple[str, str], _StoredField] = {}
    for chunk in _chunks(sorted({code for code, _ in wanted})):
        rows = session.execute(
            select(ItemField.id, ItemField.item_id, CatalogItem.code, CatalogItem.department_id, ItemField.name,
                   ItemField.level, ItemField.semantic_type, ItemField.masking)
            .join(CatalogItem, CatalogItem.id == ItemField.item_id)
            .where(CatalogItem.code.in_(chunk))
        )  # fmt: skip
        for row in rows:
            if (row.code, row.name) in wanted:
                found[(row.code, row.name)] = _StoredField(*row)
    missing = [f"{code}.{name}" for code, name in keys if (code, name) not in found]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise FieldNotFound("no such field: " + ", ".join(missing[:5]) + more)
    return found


def _suggested_levels(session: Session, item_ids: set[int]) -> dict[tuple[int, str], int]:
    suggested: dict[tuple[int, str], int] = {}
    for chunk in _chunks(sorted(item_ids)):
        rows = session.execute(
            select(ClassificationProposal.item_id, ClassificationProposal.field_name,
                   func.max(ClassificationProposal.proposed_level))
            .where(ClassificationProposal.status == OPEN, ClassificationProposal.item_id.in_(chunk))
            .group_by(ClassificationProposal.item_id, ClassificationProposal.field_name)
        )  # fmt: skip
        suggested.update({(item_id, name): level for item_id, name, level in rows})
    return suggested


def _scheme(session: Session) -> tuple[set[int], dict[str, int]]:
    levels = set(session.scalars(select(ClassificationLevel.level)))
    minimums = {rule.semantic_type: rule.minimum_level for rule in session.scalars(select(SemanticTypeRule))}
    return levels, minimums


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
