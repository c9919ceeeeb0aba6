"""Policy drift over a demo-like platform (the demo catalog with every field approved, the demo's people and machine
tokens, subscriptions made through the workflow, one of them re-approved after a raise): it reports nothing; each
kind of drift planted behind the services' back, as a database owner could, is found and named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.orm import Session

from catalog.access.demo import seed_demo_principals
from catalog.access.drift import DriftReport, DriftRules, Finding, FindingKind, check, find_drift
from catalog.access.models import CasbinRule, MachineToken, UserAccount
from catalog.access.service import Principal
from catalog.audit.models import AuditEvent
from catalog.classification import review
from catalog.db import make_engine, session_scope, utcnow
from catalog.departments.models import Department
from catalog.items.models import CatalogItem, ItemField
from catalog.settings import Settings
from catalog.subscriptions import reapproval
from catalog.subscriptions import service as subscriptions
from catalog.subscriptions.models import Subscription
from tests.catalog.helpers import import_demo

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
RULES = DriftRules.of(SETTINGS)
WORKFLOW = subscriptions.Rules(SETTINGS.auto_approve_max_level, SETTINGS.officer_level, 366)
OFFICER = Principal("user:officer", "zsj")
POPULATION, ENTERPRISE, COMPLAINTS = "PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"
# The subscriptions of the demo-like setup, by name: (consumer, item, fields).
SUBSCRIPTIONS = {
    "automatic": ("wjj", ENTERPRISE, ["统一社会信用代码", "企业名称"]),  # unconditional, level 1: active at once
    "lowered": ("zsj", POPULATION, ["公民身份号码", "姓名", "所属社区"]),  # provider, then officer at level 2
    "full": ("wjj", POPULATION, ["公民身份号码", "所属社区"]),  # provider, then officer at level 3
    "provider": ("psga", COMPLAINTS, ["事件编号", "事件类型"]),  # conditional, level 1: the provider alone
    "reapproved": ("scjg", COMPLAINTS, ["事件编号", "诉求人电话"]),  # raised to 3, re-approved by provider and officer
}


def _principal(username: str, department: str) -> Principal:
    return Principal(f"user:{username}", department)


def _subscribe(session: Session, consumer: str, item: str, fields: list[str]) -> int:
    body = subscriptions.SubscriptionCreate(item=item, fields=fields, purpose="核对业务信息",
                                            legal_basis="《深圳经济特区数据条例》第四十条", period_days=90)  # fmt: skip
    return subscriptions.request(session, WORKFLOW, body, _principal(f"{consumer}-user", consumer)).id


def _approve(session: Session, subscription_id: int, provider: str, officer_level: int | None = None) -> None:
    subscriptions.approve(session, WORKFLOW, subscription_id, _principal(f"{provider}-steward", provider), False)
    if subscriptions.read(session, WORKFLOW, subscription_id).status == "provider_approved":
        subscriptions.approve(session, WORKFLOW, subscription_id, OFFICER, True, officer_level)


def _approve_every_field(session: Session) -> None:
    pending = session.execute(
        select(CatalogItem.code, ItemField.name)
        .join(CatalogItem, CatalogItem.id == ItemField.item_id)
        .where(ItemField.reviewed_at.is_(None))
    ).all()
    if pending:
        review.decide(session, [review.FieldDecision(item=code, field=name) for code, name in pending], OFFICER)


def _demo_like(session: Session, data_dir: Path) -> dict[str, int]:
    import_demo(session)
    _approve_every_field(session)
    seed_demo_principals(session, data_dir)
    ids = {name: _subscribe(session, *request) for name, request in SUBSCRIPTIONS.items()}
    _approve(session, ids["lowered"], "psga", officer_level=2)
    _approve(session, ids["full"], "psga")
    _approve(session, ids["provider"], "zsj")
    _approve(session, ids["reapproved"], "zsj")
    raise_phone = review.FieldDecision(item=COMPLAINTS, field="诉求人电话", level=3, reason="手机号码属个人信息")
    review.decide(session, [raise_phone], OFFICER)
    reapproval.request_reapproval(session, WORKFLOW, ids["reapproved"], _principal("scjg-user", "scjg"))
    steward = _principal("zsj-steward", "zsj")
    reapproval.approve_reapproval(session, WORKFLOW, ids["reapproved"], steward, as_officer=False)
    reapproval.approve_reapproval(session, WORKFLOW, ids["reapproved"], OFFICER, as_officer=True)
    return ids


@pytest.fixture(scope="module")
def platform(backend: str, database_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(database_factory(backend))
    with session_scope(engine) as session:
        _demo_like(session, tmp_path_factory.mktemp("data"))
    yield engine
    engine.dispose()


@pytest.fixture
def db(platform: Engine) -> Iterator[Session]:
    """The demo-like platform; whatever a test plants is rolled back."""
    with platform.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    """The demo-like subscriptions' ids by name."""
    found = {}
    for name, (consumer, item, _) in SUBSCRIPTIONS.items():
        found[name] = db.execute(
            select(Subscription.id)
            .join(Department, Department.id == Subscription.consumer_department_id)
            .join(CatalogItem, CatalogItem.id == Subscription.item_id)
            .where(Department.code == consumer, CatalogItem.code == item, Subscription.status == "active")
        ).scalar_one()
    return found


def _kinds(report: DriftReport) -> set[tuple[FindingKind, Any]]:
    """(kind, what it names: the rule, or the subscription id) of every finding."""
    return {
        (f.kind, f.subscription_id if f.subscription_id is not None else tuple(f.rule or ())) for f in report.findings
    }


def _only(report: DriftReport, kind: FindingKind) -> list[Finding]:
    return [finding for finding in report.findings if finding.kind is kind]


def _add_rule(db: Session, *values: str) -> None:
    ptype, *rest = values
    db.add(CasbinRule(ptype=ptype, **{f"v{i}": value for i, value in enumerate(rest)}))
    db.flush()


def _without_foreign_keys(db: Session) -> None:
    """What a database owner can do: stop checking references for the rest of this transaction (never committed)."""
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked at the outermost commit, which never comes
    else:
        db.execute(text("SET LOCAL session_replication_role = replica"))  # foreign key triggers do not fire


def test_a_clean_demo_like_setup_reports_nothing(db: Session, ids: dict[str, int]) -> None:
    report = find_drift(db, RULES)
    assert report.findings == [], "\n".join(finding.message for finding in report.findings)
    assert (report.total, report.by_kind, report.subscriptions_checked) == (0, {}, len(SUBSCRIPTIONS))
    users, tokens = db.scalar(select(func.count(UserAccount.id))), db.scalar(select(func.count(MachineToken.id)))
    assert report.rules_checked == len(RULES.seed) + (users or 0) + (tokens or 0)  # one binding per principal
    # The re-approval is recorded in the audit trail only: the officer's decision on it is found there.
    reapproved = db.get(Subscription, ids["reapproved"])
    assert reapproved is not None
    assert (reapproved.approved_level, reapproved.officer_decided_by, reapproved.masked_fields) == (3, None, [])


def test_rules_not_in_the_seed_file_and_seed_rules_missing(db: Session) -> None:
    _add_rule(db, "p", "user", "audit", "read")  # a stray permission: consumers reading the audit trail
    _add_rule(db, "p", "superuser", "item", "update")
    _add_rule(db, "p", "steward", "secrets", "read")
    _add_rule(db, "g2", "psga", "PSGA-RK-0001")
    _add_rule(db, "g", "user:psga-user", "user")  # no department
    db.execute(delete(CasbinRule).where(CasbinRule.ptype == "p", CasbinRule.v0 == "ops", CasbinRule.v1 == "runs",
                                        CasbinRule.v2 == "operate"))  # fmt: skip

    report = find_drift(db, RULES)
    assert _kinds(report) == {
        (FindingKind.RULE_NOT_IN_SEED, ("p", "user", "audit", "read")),
        (FindingKind.RULE_UNKNOWN_ROLE, ("p", "superuser", "item", "update")),
        (FindingKind.RULE_UNKNOWN_OBJECT, ("p", "steward", "secrets", "read")),
        (FindingKind.RULE_MALFORMED, ("g2", "psga", "PSGA-RK-0001")),
        (FindingKind.RULE_MALFORMED, ("g", "user:psga-user", "user")),
        (FindingKind.RULE_MISSING, ("p", "ops", "runs", "operate")),
    }
    stray = _only(report, FindingKind.RULE_NOT_IN_SEED)[0]
    assert stray.category == "policy" and stray.rule_id is not None and stray.role == "user"
    assert stray.message == "p, user, audit, read: not in policies/policy.csv"
    assert _only(report, FindingKind.RULE_MISSING)[0].rule_id is None


def test_bindings_no_user_token_or_department_explains(db: Session) -> None:
    tokens = select(MachineToken.id, Department.code).join(Department, Department.id == MachineToken.department_id)
    token_of = {code: token_id for token_id, code in db.execute(tokens)}
    db.execute(delete(UserAccount).where(UserAccount.username == "wjj-user"))  # deleted behind the service's back
    db.execute(update(UserAccount).where(UserAccount.username == "zjj-user").values(active=False))
    db.execute(update(MachineToken).where(MachineToken.id == token_of["psga"]).values(revoked_at=utcnow()))
    db.execute(
        update(MachineToken).where(MachineToken.id == token_of["scjg"]).values(expires_at=utcnow() - timedelta(days=1))
    )
    _add_rule(db, "g", "user:psga-user", "user", "nosuch")  # a department that does not exist
    _add_rule(db, "g", f"token:{token_of['zsj']}", "steward", "zsj")  # a token made a steward
    _add_rule(db, "g", "user:mljd-user", "system", "mljd")  # a person holding the machines' role
    _add_rule(db, "g", "user:psga-steward", "steward", "zsj")  # a steward of another department
    _add_rule(db, "g", "user:officer", "data_officer", "psga")  # a global role held in one department
    _add_rule(db, "g", "token:999999", "system", "psga")  # no such token
    _add_rule(db, "g", "department:psga", "steward", "psga")  # not a principal at all

    report = find_drift(db, RULES)
    assert _kinds(report) == {
        (FindingKind.BINDING_UNKNOWN_SUBJECT, ("g", "user:wjj-user", "user", "wjj")),
        (FindingKind.BINDING_INACTIVE_USER, ("g", "user:zjj-user", "user", "zjj")),
        (FindingKind.BINDING_REVOKED_TOKEN, ("g", f"token:{token_of['psga']}", "system", "psga")),
        (FindingKind.BINDING_EXPIRED_TOKEN, ("g", f"token:{token_of['scjg']}", "system", "scjg")),
        (FindingKind.BINDING_UNKNOWN_DEPARTMENT, ("g", "user:psga-user", "user", "nosuch")),
        (FindingKind.BINDING_WRONG_ROLE, ("g", f"token:{token_of['zsj']}", "steward", "zsj")),
        (FindingKind.BINDING_WRONG_ROLE, ("g", "user:mljd-user", "system", "mljd")),
        (FindingKind.BINDING_WRONG_DEPARTMENT, ("g", "user:psga-steward", "steward", "zsj")),
        (FindingKind.BINDING_WRONG_DEPARTMENT, ("g", "user:officer", "data_officer", "psga")),
        (FindingKind.BINDING_UNKNOWN_SUBJECT, ("g", "token:999999", "system", "psga")),
        (FindingKind.BINDING_UNKNOWN_SUBJECT, ("g", "department:psga", "steward", "psga")),
    }
    wrong = _only(report, FindingKind.BINDING_WRONG_DEPARTMENT)[0]
    assert (wrong.subject, wrong.role, wrong.department) == ("user:psga-steward", "steward", "zsj")
    assert wrong.message == "g, user:psga-steward, steward, zsj: user:psga-steward holds steward in psga, its own " \
                            "department, not in zsj"  # fmt: skip


def test_subscriptions_whose_item_fields_or_consumer_are_gone(db: Session, ids: dict[str, int]) -> None:
    db.execute(update(CatalogItem).where(CatalogItem.code == ENTERPRISE).values(status="retired"))
    db.execute(update(CatalogItem).where(CatalogItem.code == COMPLAINTS).values(sharing_type="not_shared"))
    population = db.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
    db.execute(delete(ItemField).where(ItemField.item_id == population, ItemField.name == "所属社区"))
    _without_foreign_keys(db)  # a row deleted under the subscription: the schema's cascades cannot keep up
    db.execute(update(Subscription).where(Subscription.id == ids["full"]).values(item_id=999_999))
    db.execute(update(Subscription).where(Subscription.id == ids["lowered"]).values(consumer_department_id=999_999))

    report = find_drift(db, RULES)
    assert _kinds(report) == {
        (FindingKind.SUBSCRIPTION_ITEM_NOT_PUBLISHED, ids["automatic"]),
        (FindingKind.SUBSCRIPTION_ITEM_NOT_SHARED, ids["provider"]),
        (FindingKind.SUBSCRIPTION_ITEM_NOT_SHARED, ids["reapproved"]),
        (FindingKind.SUBSCRIPTION_FIELDS_MISSING, ids["lowered"]),
        (FindingKind.SUBSCRIPTION_ITEM_MISSING, ids["full"]),
        (FindingKind.SUBSCRIPTION_CONSUMER_MISSING, ids["lowered"]),
    }
    missing = _only(report, FindingKind.SUBSCRIPTION_FIELDS_MISSING)[0]
    assert (missing.item, missing.consumer, missing.fields) == (POPULATION, None, ["所属社区"])
    gone = _only(report, FindingKind.SUBSCRIPTION_ITEM_MISSING)[0]
    assert (gone.item, gone.consumer, gone.fields) == (None, "wjj", ["公民身份号码", "所属社区"])
    retired = _only(report, FindingKind.SUBSCRIPTION_ITEM_NOT_PUBLISHED)[0]
    assert retired.message == f"subscription {ids['automatic']}: item {ENTERPRISE} is retired, not published"


def test_grants_above_the_approved_levels_or_the_recorded_decisions(db: Session, ids: dict[str, int]) -> None:
    enterprise = db.scalar(select(CatalogItem.id).where(CatalogItem.code == ENTERPRISE))
    db.execute(  # raised behind the review: never propagated to the subscription's masked fields
        update(ItemField).where(ItemField.item_id == enterprise, ItemField.name == "企业名称").values(level=2)
    )
    db.execute(  # made pending and never approved, as if it had been added after the approval
        update(ItemField)
        .where(ItemField.item_id == enterprise, ItemField.name == "统一社会信用代码")
        .values(review_status="pending", reviewed_by=None, reviewed_at=None)
    )
    db.execute(update(Subscription).where(Subscription.id == ids["lowered"]).values(approved_level=3, masked_fields=[]))
    db.execute(update(Subscription).where(Subscription.id == ids["full"]).values(officer_decided_by=None))
    db.execute(update(Subscription).where(Subscription.id == ids["reapproved"]).values(approved_level=4))
    db.execute(update(Subscription).where(Subscription.id == ids["provider"]).values(approved_level=None))

    report = find_drift(db, RULES)
    assert _kinds(report) == {
        (FindingKind.GRANT_UNMASKED_ABOVE_LEVEL, ids["automatic"]),
        (FindingKind.GRANT_FIELD_UNREVIEWED, ids["automatic"]),
        (FindingKind.GRANT_WITHOUT_OFFICER, ids["full"]),
        # 4: above its fields (3), and above the level of its only officer decision (the re-approval at 3)
        (FindingKind.GRANT_ABOVE_FIELDS, ids["reapproved"]),
        (FindingKind.GRANT_WITHOUT_OFFICER, ids["reapproved"]),  # its provider decided: no finding for that
        (FindingKind.GRANT_WITHOUT_LEVEL, ids["provider"]),
    }  # "lowered" raised to 3 goes unseen: its officer decided (at 2, which only the audit trail records)
    unmasked = _only(report, FindingKind.GRANT_UNMASKED_ABOVE_LEVEL)[0]
    assert (unmasked.fields, unmasked.levels, unmasked.approved_level) == (["企业名称"], {"企业名称": 2}, 1)
    unreviewed = _only(report, FindingKind.GRANT_FIELD_UNREVIEWED)[0]
    assert (unreviewed.category, unreviewed.fields, unreviewed.consumer) == ("grant", ["统一社会信用代码"], "wjj")
    above = _only(report, FindingKind.GRANT_ABOVE_FIELDS)[0]
    assert above.levels == {"事件编号": 1, "诉求人电话": 3}


def test_provider_decisions_and_officer_levels_follow_the_settings(db: Session, ids: dict[str, int]) -> None:
    db.execute(update(Subscription).where(Subscription.id == ids["full"]).values(provider_decided_by="automatic"))
    found = find_drift(db, RULES)
    assert _kinds(found) == {(FindingKind.GRANT_WITHOUT_PROVIDER, ids["full"])}
    assert "but approved automatically" in found.findings[0].message

    stricter = DriftRules(RULES.seed, auto_approve_max_level=0, officer_level=2)
    assert _kinds(find_drift(db, stricter)) == {
        (FindingKind.GRANT_WITHOUT_PROVIDER, ids["full"]),
        (FindingKind.GRANT_WITHOUT_PROVIDER, ids["automatic"]),  # level 1, approved automatically
    }  # "lowered" at 2 and "full" at 3 had an officer; the re-approval at 3 was an officer's


def test_check_is_audited_and_find_drift_writes_nothing(db: Session) -> None:
    _add_rule(db, "p", "user", "audit", "read")
    before = db.scalar(select(func.max(AuditEvent.id))) or 0
    assert find_drift(db, RULES).total == 1
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.id > before)) == 0

    report = check(db, RULES, OFFICER)
    event = db.scalars(select(AuditEvent).where(AuditEvent.id > before)).one()
    assert (event.principal, event.department, event.action, event.outcome) == (
        "user:officer", "zsj", "policy.check", "done",
    )  # fmt: skip
    assert event.detail == {"findings": 1, "by_kind": {"rule_not_in_seed": 1}} == {
        "findings": report.total, "by_kind": report.by_kind,
    }  # fmt: skip


def test_every_kind_is_defined_once_and_categorised() -> None:
    assert {kind.category.value for kind in FindingKind} == {"policy", "subscription", "grant"}
    assert FindingKind.BINDING_WRONG_ROLE.category == "policy"
    assert FindingKind.SUBSCRIPTION_ITEM_MISSING.category == "subscription"
    assert FindingKind.GRANT_WITHOUT_OFFICER.category == "grant"


def test_a_verification_is_decided_at_its_keys_level_which_is_no_drift(db: Session, ids: dict[str, int]) -> None:
    # "full" covers the community (2) and the resident ID (3): as a verification of the community alone, its level 3
    # is the key's (decided by the provider and an officer); as a read of the community alone, it is above its field.
    narrowed = {"fields": ["所属社区"], "masked_fields": []}
    db.execute(update(Subscription).where(Subscription.id == ids["full"]).values(kind="verify", **narrowed))
    assert find_drift(db, RULES).findings == []
    db.execute(update(Subscription).where(Subscription.id == ids["full"]).values(kind="read"))
    assert _kinds(find_drift(db, RULES)) == {(FindingKind.GRANT_ABOVE_FIELDS, ids["full"])}
