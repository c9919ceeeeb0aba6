"""Classification review on both backends: detection proposals made while ingesting, officers' decisions and
their rules, the queue, a steward's change reopening review, and a raised level reaching subscriptions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit.models import AuditEvent
from catalog.classification import review
from catalog.classification.imported import IMPORTED_REASON
from catalog.classification.models import ClassificationProposal, FieldReview
from catalog.classification.types import SemanticType
from catalog.db import utcnow
from catalog.delivery.access_cache import AccessCache
from catalog.delivery.service import grant_for
from catalog.departments.models import Department
from catalog.ingest import detection
from catalog.ingest.service import ingest_export
from catalog.items.models import CatalogItem, ItemField
from catalog.notifications.models import Notification
from catalog.subscriptions import reapproval
from catalog.subscriptions import service as subscriptions
from catalog.subscriptions.models import Subscription
from tests.catalog.helpers import OFFICER, approve_every_field, import_demo, import_demo_unreviewed

COMPLAINTS = "ZSJ-MS-0001"
PHONE = "诉求人电话"
RULES = subscriptions.Rules(auto_approve_max_level=2, officer_level=3, max_days=366)


@pytest.fixture
def ingested(session: Session, samples_dir: Path, tmp_path: Path) -> Session:
    import_demo(session)
    data = (samples_dir / "zsj_complaints_20261120.json").read_bytes()
    outcome = ingest_export(session, COMPLAINTS, data, "zsj_complaints_20261120.json", raw_dir=tmp_path, trigger="test")
    assert outcome.outcome == "published"
    return session


def open_proposals(session: Session, field: str = PHONE) -> list[ClassificationProposal]:
    return list(
        session.scalars(
            select(ClassificationProposal).where(
                ClassificationProposal.field_name == field, ClassificationProposal.status == review.OPEN
            )
        )
    )


def field_row(session: Session, code: str, name: str) -> ItemField:
    statement = select(ItemField).join(CatalogItem).where(CatalogItem.code == code, ItemField.name == name)
    return session.execute(statement).scalar_one()


def test_ingesting_proposes_phone_for_an_under_declared_field_with_masked_evidence(
    ingested: Session, samples_dir: Path, tmp_path: Path
) -> None:
    [proposal] = open_proposals(ingested)
    assert (proposal.source, proposal.proposed_semantic_type, proposal.proposed_level) == ("detection", "phone", 3)
    assert proposal.evidence["share"] >= 0.95 and set(proposal.evidence["reasons"]) == {
        "type_differs", "level_below_minimum"}  # fmt: skip
    raw_numbers = (samples_dir / "zsj_complaints_20261120.json").read_text(encoding="utf-8")
    assert all("****" in example and example not in raw_numbers for example in proposal.evidence["examples"])
    assert field_row(ingested, COMPLAINTS, PHONE).review_status == review.PENDING
    assert not open_proposals(ingested, "事件类型")  # a code list declared as such raises nothing

    again = (samples_dir / "zsj_complaints_20261120.json").read_bytes().replace(b"PS2026", b"PS2027")
    ingest_export(ingested, COMPLAINTS, again, "zsj_complaints_20261121.json", raw_dir=tmp_path, trigger="test")
    assert len(open_proposals(ingested)) == 1  # the same suggestion again gets new evidence, not a second row

    total, entries = review.queue(ingested, review.QueueFilter(finding="phone"))
    assert total == 1 and (entries[0].item, entries[0].field, entries[0].suggested_level) == (COMPLAINTS, PHONE, 3)


def test_detection_failing_never_blocks_publishing(
    session: Session, samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_demo(session)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("detector crashed")

    monkeypatch.setattr(detection, "profile_field", broken)
    data = (samples_dir / "zsj_complaints_20261120.json").read_bytes()
    outcome = ingest_export(session, COMPLAINTS, data, "zsj_complaints_20261120.json", raw_dir=tmp_path, trigger="t")
    assert outcome.outcome == "published" and not open_proposals(session)


def test_decisions_need_reasons_for_changes_and_below_a_suggestion_and_are_all_or_nothing(ingested: Session) -> None:
    decide = review.FieldDecision
    refusals = {
        "a change needs a reason": decide(item=COMPLAINTS, field="事件类型", level=2),
        "below the suggested level 3 needs a reason": decide(item=COMPLAINTS, field=PHONE),
        "at least level 3": decide(item=COMPLAINTS, field=PHONE, semantic_type=SemanticType.PHONE, level=2, reason="x"),
        "not a level of the scheme": decide(item=COMPLAINTS, field="状态", level=9, reason="x"),
    }
    decided_before = ingested.scalar(select(func.count()).select_from(FieldReview))
    for message, bad in refusals.items():
        with pytest.raises(review.InvalidDecision, match=message):
            review.decide(ingested, [decide(item=COMPLAINTS, field="事件编号"), bad], OFFICER)
    with pytest.raises(review.FieldNotFound, match=r"ZSJ-MS-0001\.nosuch"):
        review.decide(ingested, [decide(item=COMPLAINTS, field="nosuch")], OFFICER)
    # Nothing of a refused batch was written.
    assert ingested.scalar(select(func.count()).select_from(FieldReview)) == decided_before

    report = review.decide(ingested, [
        decide(item=COMPLAINTS, field=PHONE, level=3, semantic_type=SemanticType.PHONE,
               reason="手机号码，按个人信息定级"),
        decide(item=COMPLAINTS, field="事件编号"),
    ], OFFICER)  # fmt: skip
    assert (report.decided, report.changed) == (2, 1)
    assert report.raised == [review.Raised(COMPLAINTS, PHONE, 1, 3)]
    phone = field_row(ingested, COMPLAINTS, PHONE)
    assert (phone.level, phone.semantic_type, phone.masking, phone.review_status) == (3, "phone", "phone", "approved")
    assert not open_proposals(ingested)
    imported, entry = [h for h in review.history(ingested, COMPLAINTS) if h["field"] == PHONE]
    assert (imported["from_level"], imported["to_level"], imported["reason"]) == (1, 1, IMPORTED_REASON)
    assert (entry["from_level"], entry["to_level"], entry["suggested_level"], entry["decided_by"]) == (
        1, 3, 3, OFFICER.subject)  # fmt: skip
    assert entry["reason"] == "手机号码，按个人信息定级"
    audited = ingested.scalars(select(AuditEvent).where(AuditEvent.action == "classification.decide")).all()
    assert {event.detail["field"] for event in audited if not event.detail.get("imported")} == {
        PHONE, "事件编号"}  # fmt: skip
    assert ingested.scalar(select(CatalogItem.level).where(CatalogItem.code == COMPLAINTS)) == 3


def test_a_stewards_change_of_level_reopens_review(session: Session) -> None:
    import_demo(session)
    approve_every_field(session, "SCJG-FR-0001")
    total, _ = review.queue(session, review.QueueFilter(department="scjg"))
    assert total == 0
    from catalog.declarations.service import import_catalog, parse_catalog_text
    from tests.catalog.helpers import demo_raw, raw_field

    raw = demo_raw()
    raw_field(raw, "SCJG-FR-0001", "企业名称")["level"] = 2
    import yaml

    import_catalog(session, parse_catalog_text(yaml.safe_dump(raw, allow_unicode=True)), actor="steward:scjg")
    total, entries = review.queue(session, review.QueueFilter(department="scjg"))
    assert total == 1 and entries[0].field == "企业名称" and entries[0].level == 2


def test_a_raised_level_masks_the_field_for_subscriptions_approved_below_it_until_reapproved(
    ingested: Session,
) -> None:
    session = ingested
    approve_every_field(session, "PSGA-RK-0001")
    consumer = Principal("user:psga-user", "psga")
    requested = subscriptions.SubscriptionCreate(
        item=COMPLAINTS, fields=["事件编号", "事件类型", PHONE], purpose="核对诉求人身份",
        legal_basis="深圳经济特区数据条例", period_days=30,
    )  # fmt: skip
    created = subscriptions.request(session, RULES, requested, consumer)
    approved = subscriptions.approve(session, RULES, created.id, Principal("user:zsj-steward", "zsj"), False)
    assert approved.status == "active" and approved.approved_level == 1 and approved.masked_fields == []
    cache = AccessCache(0, b"k" * 16)

    def masked() -> list[str]:
        return [field.name for field in grant_for(session, cache, consumer, COMPLAINTS).fields if field.masked]

    assert masked() == []
    raise_phone = review.FieldDecision(
        item=COMPLAINTS, field=PHONE, level=3, semantic_type=SemanticType.PHONE, reason="手机号"
    )
    report = review.decide(session, [raise_phone], OFFICER)
    session.flush()
    assert (report.subscriptions_masked, report.notifications) == (1, 2)
    assert masked() == [PHONE]  # the next read, without a restart
    notified = session.execute(
        select(Department.code, Notification.kind).join(Department, Department.id == Notification.department_id)
        .where(Notification.kind == "classification_raised")  # the subscription's own notices came before
    ).all()  # fmt: skip
    assert sorted(notified) == [("psga", "classification_raised"), ("zsj", "classification_raised")]

    lower = review.FieldDecision(item=COMPLAINTS, field=PHONE, level=1, semantic_type=SemanticType.NONE, reason="误判")
    review.decide(session, [lower], OFFICER)
    assert masked() == [PHONE]  # a fall unmasks nothing until the subscription is re-approved
    assert subscriptions.read(session, RULES, created.id).masked_fields == [PHONE]

    review.decide(session, [raise_phone], OFFICER)
    asked = reapproval.request_reapproval(session, RULES, created.id, consumer)
    assert (asked.reapproval_status, asked.reapproval_level) == ("requested", 3)  # conditional: provider, officer
    provider = Principal("user:zsj-steward", "zsj")
    assert reapproval.approve_reapproval(session, RULES, created.id, provider, False).reapproval_status == (
        "provider_approved")  # fmt: skip
    done = reapproval.approve_reapproval(session, RULES, created.id, OFFICER, True)
    assert (done.approved_level, done.masked_fields, done.reapproval_status) == (3, [], None)
    assert masked() == []
    expired_soon = session.get(Subscription, created.id)
    assert expired_soon is not None and expired_soon.expires_at is not None
    assert expired_soon.expires_at > utcnow() + timedelta(days=29)


def test_an_ended_subscription_keeps_no_pending_reapproval(ingested: Session) -> None:
    consumer, provider = Principal("user:psga-user", "psga"), Principal("user:zsj-steward", "zsj")
    requested = subscriptions.SubscriptionCreate(
        item=COMPLAINTS, fields=["事件编号", PHONE], purpose="核对诉求人身份", legal_basis="深圳经济特区数据条例",
        period_days=30,
    )  # fmt: skip
    created = subscriptions.request(ingested, RULES, requested, consumer)
    subscriptions.approve(ingested, RULES, created.id, provider, False)
    raise_phone = review.FieldDecision(
        item=COMPLAINTS, field=PHONE, level=3, semantic_type=SemanticType.PHONE, reason="手机号"
    )
    review.decide(ingested, [raise_phone], OFFICER)
    assert reapproval.request_reapproval(ingested, RULES, created.id, consumer).reapproval_status == "requested"
    ended = subscriptions.revoke(ingested, RULES, created.id, consumer, "不再需要")
    assert (ended.status, ended.reapproval_status, ended.reapproval_level) == ("revoked", None, None)
    with pytest.raises(subscriptions.IllegalSubscriptionChange):
        reapproval.approve_reapproval(ingested, RULES, created.id, provider, False)


def test_the_queue_by_item_counts_exactly_what_the_queue_of_fields_lists(session: Session) -> None:
    import_demo_unreviewed(session)
    codes = sorted(session.scalars(select(CatalogItem.code)))
    approve_every_field(session, codes[0])
    approve_every_field(session, codes[1])
    items = {item.code: item for item in session.scalars(select(CatalogItem))}
    long_ago = utcnow() - timedelta(days=30)
    for code, field, age in ((codes[0], 0, timedelta(days=3)), (codes[2], 1, timedelta(days=60)),
                             (codes[2], 2, timedelta(days=45)), (codes[1], 2, timedelta(days=1))):  # fmt: skip
        # an approved field with an open proposal waits too; a proposal older than its item's last change sets since
        name = items[code].fields[field].name
        source = "detection" if code == codes[2] else "steward"
        session.add(ClassificationProposal(item_id=items[code].id, field_name=name, source=source, proposed_level=3,
                                           proposed_semantic_type="none", proposed_masking="none", reason="test",
                                           evidence={}, created_by="user:test", created_at=long_ago + age))  # fmt: skip
    session.flush()

    def by_item(wanted: review.QueueFilter) -> list[tuple[str, int, int, object]]:
        _, fields = review.queue(session, replace(wanted, limit=100_000, offset=0))
        grouped: dict[str, list[review.QueueEntry]] = {}
        for entry in fields:
            grouped.setdefault(entry.item, []).append(entry)
        rows = [(code, len(found), sum(1 for entry in found if entry.proposals),
                 min(entry.waiting_since for entry in found)) for code, found in grouped.items()]  # fmt: skip
        return sorted(rows, key=lambda row: (row[3], row[0]))

    department = session.scalar(select(Department.code).where(Department.id == items[codes[2]].department_id))
    filters = [{}, {"department": department}, {"item": codes[2]}, {"finding": "any"}, {"level": 1},
               {"semantic_type": "none"}]  # fmt: skip
    for wanted in (review.QueueFilter(**given) for given in filters):  # type: ignore[arg-type]
        expected = by_item(wanted)
        total, listed = review.pending_items(session, replace(wanted, limit=1000))
        assert total == len(expected), wanted
        assert [(e.item, e.pending_fields, e.with_proposals, e.waiting_since) for e in listed] == expected, wanted
        total, second = review.pending_items(session, replace(wanted, limit=2, offset=2))
        assert total == len(expected) and [e.item for e in second] == [row[0] for row in expected[2:4]]
        assert review.pending_items(session, replace(wanted, offset=len(expected) + 5)) == (len(expected), [])
    assert {row[0]: row[1:3] for row in by_item(review.QueueFilter())}[codes[0]] == (1, 1)  # approved, one proposal
