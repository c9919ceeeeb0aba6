"""Only a data officer's decision changes what is served, on both backends: a steward's change of an approved
field's level, semantic type or masking rule is a proposal (a raise applies at once), a field never approved is
never served, items are registered as drafts unless a data officer imports them, and every change to an item is
audited in its transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.audit.models import AuditEvent
from catalog.classification import review
from catalog.classification.imported import IMPORTED_REASON
from catalog.classification.models import ClassificationProposal, FieldReview
from catalog.classification.types import MaskingRule, SemanticType
from catalog.declarations.service import import_catalog
from catalog.delivery.access_cache import AccessCache
from catalog.delivery.service import grant_for
from catalog.ingest.service import ingest_export
from catalog.items import service as items
from catalog.items.errors import InvalidDeclaration
from catalog.items.models import CatalogItem, ItemField
from catalog.items.schemas import ItemDeclaration, ItemStatus
from catalog.subscriptions import service as subscriptions
from tests.catalog.helpers import OFFICER, demo_file, import_demo, import_demo_unreviewed

POPULATION, ENTERPRISE = "PSGA-RK-0001", "SCJG-FR-0001"
PHONE, REPRESENTATIVE, COMMUNITY = "联系电话", "法定代表人", "所属社区"
PSGA_STEWARD = Principal("user:psga-steward", "psga")
SCJG_STEWARD = Principal("user:scjg-steward", "scjg")
RULES = subscriptions.Rules(auto_approve_max_level=2, officer_level=3, max_days=366)


def declaration(code: str) -> ItemDeclaration:
    return next(item for item in demo_file().items if item.code == code)


def with_field(item: ItemDeclaration, name: str, **changes: Any) -> ItemDeclaration:
    fields = [field.model_copy(update=changes) if field.name == name else field for field in item.fields]
    return item.model_copy(update={"fields": fields})


def stored_field(session: Session, code: str, name: str) -> ItemField:
    statement = select(ItemField).join(CatalogItem).where(CatalogItem.code == code, ItemField.name == name)
    return session.execute(statement).scalar_one()


def open_proposals(session: Session, name: str) -> list[ClassificationProposal]:
    statement = select(ClassificationProposal).where(
        ClassificationProposal.field_name == name, ClassificationProposal.status == review.OPEN
    )
    return list(session.scalars(statement))


def audited(session: Session, action: str, item_code: str | None = None) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if item_code is not None:
        statement = statement.where(AuditEvent.item_code == item_code)
    return list(session.scalars(statement))


@pytest.fixture
def published(session: Session, samples_dir: Path, tmp_path: Path) -> Session:
    """The demo as its data officer imports it, with the population and enterprise exports published."""
    import_demo(session)
    for code, name in ((POPULATION, "psga_population_20261120.csv"), (ENTERPRISE, "scjg_enterprise_20261120.csv")):
        data = (samples_dir / name).read_bytes()
        assert ingest_export(session, code, data, name, raw_dir=tmp_path, trigger="test").outcome == "published"
    return session


def test_a_stewards_lowering_of_an_approved_field_waits_for_an_officer(published: Session) -> None:
    session = published
    lowered = with_field(declaration(POPULATION), PHONE, level=1, semantic_type=SemanticType.NONE,
                         masking=MaskingRule.NONE)  # fmt: skip

    answer = items.update_item(session, lowered, PSGA_STEWARD)

    phone = stored_field(session, POPULATION, PHONE)
    assert (phone.level, phone.semantic_type, phone.masking) == (3, "phone", "phone")  # still served as approved
    assert phone.review_status == review.PENDING
    assert [(a.field, a.level, a.semantic_type, a.masking, a.applied) for a in answer.awaiting_review] == [
        (PHONE, 1, "none", "none", False)
    ]
    [proposal] = open_proposals(session, PHONE)
    assert (proposal.source, proposal.proposed_level, proposal.proposed_semantic_type, proposal.proposed_masking) == (
        "steward", 1, "none", "none")  # fmt: skip
    [event] = audited(session, "classification.propose", POPULATION)
    assert (event.principal, event.detail["applied"], event.detail["declared"]["level"]) == (
        PSGA_STEWARD.subject, False, 1)  # fmt: skip
    assert audited(session, "item.update", POPULATION) == []  # nothing else of the declaration changed

    # A new subscriber still needs a data officer for the phone field, and reads it masked until then.
    zsj = Principal("user:zsj-user", "zsj")
    asked = subscriptions.SubscriptionCreate(item=POPULATION, fields=["所属社区", PHONE], purpose="核对户籍信息",
                                             legal_basis="深圳经济特区数据条例", period_days=30)  # fmt: skip
    created = subscriptions.request(session, RULES, asked, zsj)
    assert (created.level, created.needs_officer) == (3, True)
    assert subscriptions.approve(session, RULES, created.id, PSGA_STEWARD, False).status == "provider_approved"
    subscriptions.approve(session, RULES, created.id, OFFICER, True, level=2)
    assert grant_for(session, AccessCache(0, b"k" * 16), zsj, POPULATION).masked == [PHONE]

    # Sending the same declaration again makes no second proposal.
    assert items.update_item(session, lowered, PSGA_STEWARD).awaiting_review[0].applied is False
    assert len(open_proposals(session, PHONE)) == 1

    # The officer approves the proposal: only now is the lower level served.
    accepted = review.FieldDecision(item=POPULATION, field=PHONE, level=1, semantic_type=SemanticType.NONE,
                                    masking=MaskingRule.NONE, reason="办公电话，非个人")  # fmt: skip
    review.decide(session, [accepted], OFFICER)
    phone = stored_field(session, POPULATION, PHONE)
    assert (phone.level, phone.semantic_type, phone.masking, phone.review_status) == (1, "none", "none", "approved")
    last = review.history(session, POPULATION)[-1]
    assert (last["from_masking"], last["to_masking"]) == ("phone", "none")


def test_an_open_data_field_is_never_exposed_by_a_stewards_change(published: Session) -> None:
    session = published
    exposed = with_field(declaration(ENTERPRISE), REPRESENTATIVE, level=1, semantic_type=SemanticType.NONE,
                         masking=MaskingRule.NONE)  # fmt: skip

    items.update_item(session, exposed, SCJG_STEWARD)

    anonymous = grant_for(session, AccessCache(0, b"k" * 16), Principal("anonymous", None), ENTERPRISE)
    assert REPRESENTATIVE not in anonymous.names


def test_a_change_that_only_raises_protection_applies_at_once(published: Session) -> None:
    session = published
    zsj = Principal("user:zsj-user", "zsj")
    asked = subscriptions.SubscriptionCreate(item=POPULATION, fields=["性别", COMMUNITY], purpose="统计社区人口",
                                             legal_basis="深圳经济特区数据条例", period_days=30)  # fmt: skip
    created = subscriptions.request(session, RULES, asked, zsj)
    subscriptions.approve(session, RULES, created.id, PSGA_STEWARD, False)
    cache = AccessCache(0, b"k" * 16)
    assert grant_for(session, cache, zsj, POPULATION).masked == []

    raised = with_field(declaration(POPULATION), COMMUNITY, level=3, masking=MaskingRule.REDACT)
    answer = items.update_item(session, raised, PSGA_STEWARD)

    assert [(a.field, a.level, a.applied) for a in answer.awaiting_review] == [(COMMUNITY, 3, True)]
    community = stored_field(session, POPULATION, COMMUNITY)
    assert (community.level, community.masking, community.review_status) == (3, "redact", review.PENDING)
    assert grant_for(session, cache, zsj, POPULATION).masked == [COMMUNITY]  # the very next read
    assert subscriptions.read(session, RULES, created.id).masked_fields == [COMMUNITY]
    [event] = audited(session, "subscription.masked", POPULATION)
    assert event.principal == PSGA_STEWARD.subject


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"level": 4}, "raise"),
        ({"masking": MaskingRule.DROP}, "raise"),
        ({"masking": MaskingRule.HASH}, "proposal"),  # as revealing as the name rule, in another way
        ({"level": 4, "masking": MaskingRule.HASH}, "proposal"),
        ({"semantic_type": SemanticType.FREE_TEXT}, "proposal"),
    ],
)
def test_what_counts_as_only_raising_protection(published: Session, changes: dict[str, Any], kind: str) -> None:
    answer = items.update_item(published, with_field(declaration(POPULATION), "姓名", **changes), PSGA_STEWARD)
    assert [a.applied for a in answer.awaiting_review] == [kind == "raise"]
    name = stored_field(published, POPULATION, "姓名")
    expected = {"level": 3, "masking": "name", "semantic_type": "person_name"}
    if kind == "raise":
        expected |= {key: str(value) if key != "level" else value for key, value in changes.items()}
    assert {"level": name.level, "masking": name.masking, "semantic_type": name.semantic_type} == expected


def test_a_field_no_officer_approved_is_never_served(published: Session) -> None:
    session = published
    item = declaration(ENTERPRISE)
    added = item.model_copy(
        update={"fields": [*item.fields, item.fields[1].model_copy(update={"name": "联系人", "key": False})]}
    )
    items.update_item(session, added, SCJG_STEWARD)  # fmt: skip
    assert stored_field(session, ENTERPRISE, "联系人").review_status == review.PENDING

    zsj = Principal("user:zsj-user", "zsj")
    asked = subscriptions.SubscriptionCreate(item=ENTERPRISE, fields=["企业名称", "联系人"], purpose="核对户籍信息",
                                             legal_basis="深圳经济特区数据条例", period_days=30)  # fmt: skip
    with pytest.raises(subscriptions.InvalidRequest, match="联系人 of item SCJG-FR-0001 await a data officer"):
        subscriptions.request(session, RULES, asked, zsj)
    access = AccessCache(0, b"k" * 16).item(session, ENTERPRISE)
    assert access is not None and "联系人" not in [field.name for field in access.declared]

    review.decide(session, [review.FieldDecision(item=ENTERPRISE, field="联系人")], OFFICER)
    assert subscriptions.request(session, RULES, asked, zsj).status == "active"


def test_items_are_registered_as_drafts(session: Session) -> None:
    import_demo_unreviewed(session)
    housing = declaration(POPULATION).model_copy(update={"code": "PSGA-RK-0002", "status": ItemStatus.PUBLISHED})

    with pytest.raises(InvalidDeclaration, match="registered as a draft, not published"):
        items.register_item(session, housing, PSGA_STEWARD)
    drafted = items.register_item(session, housing.model_copy(update={"status": None}), PSGA_STEWARD)
    assert drafted.status is ItemStatus.DRAFT
    with pytest.raises(InvalidDeclaration, match="only a data officer's import"):
        import_catalog(session, demo_file().model_copy(update={"items": [housing.model_copy(
            update={"code": "PSGA-RK-0003"})]}), "steward:psga")  # fmt: skip
    assert session.scalar(select(CatalogItem.id).where(CatalogItem.code == "PSGA-RK-0003")) is None


def test_a_data_officers_import_records_each_field_as_that_officers_decision(session: Session) -> None:
    import_demo(session)

    fields = sum(len(item.fields) for item in demo_file().items)
    reviews = session.scalars(select(FieldReview)).all()
    assert len(reviews) == fields
    assert {(r.decided_by, r.reason, r.from_level == r.to_level) for r in reviews} == {
        (OFFICER.subject, IMPORTED_REASON, True)}  # fmt: skip
    decided = audited(session, "classification.decide")
    assert [event.item_code for event in decided] == [POPULATION, ENTERPRISE, "ZSJ-MS-0001"]
    assert {event.principal for event in decided} == {OFFICER.subject}
    assert sum(len(event.detail["fields"]) for event in decided) == fields
    assert decided[0].detail["fields"][PHONE] == {"level": 3, "semantic_type": "phone", "masking": "phone"}
    assert session.scalar(select(func.count()).select_from(ItemField).where(ItemField.review_status != "approved")) == 0
    assert [event.item_code for event in audited(session, "item.register")] == [POPULATION, ENTERPRISE, "ZSJ-MS-0001"]
    [imported] = audited(session, "catalog.import")
    assert (imported.principal, imported.detail["by_officer"], imported.detail["items_created"]) == (
        OFFICER.subject, True, 3)  # fmt: skip


def test_register_update_and_transition_are_audited_in_their_transaction(session: Session) -> None:
    import_demo_unreviewed(session)
    housing = declaration(POPULATION).model_copy(update={"code": "PSGA-RK-0002", "status": None})

    items.register_item(session, housing, PSGA_STEWARD)
    items.update_item(session, housing.model_copy(update={"title": "人口信息（副本）"}), PSGA_STEWARD)
    items.transition(session, "PSGA-RK-0002", ItemStatus.IN_REVIEW, PSGA_STEWARD)

    [registered] = audited(session, "item.register", "PSGA-RK-0002")
    assert (registered.principal, registered.department, registered.detail["status"]) == (
        PSGA_STEWARD.subject, "psga", "draft")  # fmt: skip
    [updated] = audited(session, "item.update", "PSGA-RK-0002")
    assert updated.detail["changed"] == ["title"]
    [moved] = audited(session, "item.transition", "PSGA-RK-0002")
    assert (moved.detail["from_status"], moved.detail["to_status"]) == ("draft", "in_review")

    before = session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(InvalidDeclaration):
        items.update_item(session, housing.model_copy(update={"department": "nosuch"}), PSGA_STEWARD)
    with pytest.raises(items.FieldsNotReviewed):
        items.transition(session, "PSGA-RK-0002", ItemStatus.PUBLISHED, PSGA_STEWARD)
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before  # refused: nothing recorded
