"""Each kind of notification reaches the right people, made by the real events in their transaction: requests
awaiting the provider's stewards then data officers, decisions for the consumer's department, expiry in a week
(once) and expired, quarantined batches and late items for the provider's stewards and ops, the officers' digest,
new versions for consumers who opted in. No notice carries a cell value of an export."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access.service import Principal
from catalog.classification.models import ClassificationProposal
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.ingest.service import ingest_export
from catalog.items.models import CatalogItem
from catalog.notifications import notices
from catalog.notifications.models import Notification, NotificationDelivery
from catalog.notifications.senders import Content, mail_body, subject, webhook_body
from catalog.notifications.service import notify_all
from catalog.settings import Settings
from catalog.subscriptions import service as subscriptions
from catalog.subscriptions.service import Rules, SubscriptionCreate
from tests.catalog.notifications.conftest import add_people

RULES = Rules(auto_approve_max_level=2, officer_level=3, max_days=366)
POPULATION = "PSGA-RK-0001"
ZSJ_USER, PSGA_STEWARD = Principal("user:zsj-user", "zsj"), Principal("user:psga-steward", "psga")
OFFICER = Principal("user:officer", "zsj")


@dataclass(frozen=True)
class Late:
    item: str
    title: str
    department: str
    status: str
    due_at: datetime | None
    last_received_at: datetime | None


@pytest.fixture
def people(session: Session) -> Session:
    add_people(session)
    return session


def sent_to(session: Session, kind: str) -> set[str]:
    """Who the deliveries of this kind's notifications go to."""
    return set(session.scalars(
        select(NotificationDelivery.target)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(Notification.kind == kind)
    ))  # fmt: skip


def request(session: Session, consumer: Principal = ZSJ_USER, **extra: object) -> int:
    body = SubscriptionCreate(item=POPULATION, fields=["公民身份号码", "所属社区"], purpose="核对户籍信息",
                              legal_basis="数据条例第四十条", period_days=30, **extra)  # type: ignore[arg-type]  # fmt: skip
    return subscriptions.request(session, RULES, body, consumer).id


def test_a_request_awaits_the_providers_stewards_then_officers_then_the_consumer_hears(people: Session) -> None:
    subscription_id = request(people)
    assert sent_to(people, "subscription_awaits_approval") == {"user:psga-steward"}

    subscriptions.approve(people, RULES, subscription_id, PSGA_STEWARD, as_officer=False)
    assert sent_to(people, "subscription_awaits_approval") == {"user:psga-steward", "user:officer"}
    assert sent_to(people, "subscription_decided") == set()

    subscriptions.approve(people, RULES, subscription_id, OFFICER, as_officer=True, level=2)
    assert sent_to(people, "subscription_decided") == {"user:zsj-steward", "user:zsj-user"}
    decided = people.scalars(select(Notification).where(Notification.kind == "subscription_decided")).one()
    assert decided.message.startswith("贵部门对 PSGA-RK-0001（") and "was approved" in decided.message


def test_a_rejection_reaches_the_consumer_without_its_reason(people: Session) -> None:
    subscription_id = request(people)
    subscriptions.reject(people, RULES, subscription_id, PSGA_STEWARD, "申请人张三的用途不明")

    assert sent_to(people, "subscription_decided") == {"user:zsj-steward", "user:zsj-user"}
    message = people.scalars(select(Notification.message).where(Notification.kind == "subscription_decided")).one()
    assert "rejected" in message and "张三" not in message


def active_subscription(session: Session) -> int:
    subscription_id = request(session)
    subscriptions.approve(session, RULES, subscription_id, PSGA_STEWARD, as_officer=False)
    subscriptions.approve(session, RULES, subscription_id, OFFICER, as_officer=True)
    return subscription_id


def test_a_subscription_ending_within_a_week_is_noticed_once_then_its_expiry(people: Session) -> None:
    subscription_id = active_subscription(people)
    ends = people.get_one(subscriptions.Subscription, subscription_id).expires_at
    assert ends is not None

    assert notices.subscriptions_expiring(people, now=ends - timedelta(days=8)) == []
    assert notices.subscriptions_expiring(people, now=ends - timedelta(days=6)) == [subscription_id]
    assert notices.subscriptions_expiring(people, now=ends - timedelta(days=5)) == []  # once
    assert sent_to(people, "subscription_expiring") == {"user:zsj-steward", "user:zsj-user"}

    assert subscriptions.expire_due(people, now=ends + timedelta(seconds=1)) == [subscription_id]
    assert sent_to(people, "subscription_expired") == {"user:zsj-steward", "user:zsj-user"}


def test_new_versions_reach_only_the_consumers_who_opted_in(people: Session) -> None:
    opted = active_subscription(people)
    people.get_one(subscriptions.Subscription, opted).notify_new_versions = True
    silent = request(people, Principal("user:wjj-user", "wjj"))
    subscriptions.approve(people, RULES, silent, PSGA_STEWARD, as_officer=False)
    subscriptions.approve(people, RULES, silent, OFFICER, as_officer=True)

    assert notices.version_published(people, POPULATION, 7) == 1
    assert sent_to(people, "version_published") == {"user:zsj-steward", "user:zsj-user"}


def test_the_opt_in_is_set_at_request_time(people: Session) -> None:
    subscription_id = request(people, notify_new_versions=True)
    assert people.get_one(subscriptions.Subscription, subscription_id).notify_new_versions


def test_a_late_item_reaches_the_providers_stewards_and_ops_once_per_due_time(people: Session) -> None:
    due = datetime(2026, 11, 30, 2, tzinfo=UTC)
    late = Late(POPULATION, "人口基本信息", "psga", "late", due, due - timedelta(days=1))

    assert notices.item_late(people, late)
    assert not notices.item_late(people, late)
    assert notices.item_late(people, Late(**{**late.__dict__, "status": "overdue"}))
    assert sent_to(people, "item_late") == {"user:psga-steward", "user:ops"}
    audiences = set(people.scalars(select(Notification.audience).where(Notification.kind == "item_late")))
    assert audiences == {"stewards", "ops"}


def test_the_officers_digest_counts_a_days_detection_proposals_once(people: Session) -> None:
    day = utcnow().date()
    item_id = people.scalar(select(CatalogItem.id).where(CatalogItem.code == POPULATION))
    for name in ("联系电话", "户籍地址"):
        proposal = ClassificationProposal(item_id=item_id, field_name=name, source="detection", proposed_level=3,
                                          proposed_semantic_type="phone", created_by="detection")  # fmt: skip
        people.add(proposal)
    people.flush()

    digest = notices.detection_digest(people, day)
    assert digest is not None and digest.department_id is None and digest.audience == "data_officers"
    assert digest.detail["items"] == {POPULATION: 2} and "2 new classification(s)" in digest.message
    assert notices.detection_digest(people, day) is None
    assert notices.detection_digest(people, day - timedelta(days=1)) is None  # nothing that day
    assert sent_to(people, "detection_digest") == {"user:officer"}


def test_a_quarantined_batch_and_a_new_version_from_real_ingestions_carry_no_cell_value(
    people: Session, samples_dir: Path, tmp_path: Path
) -> None:
    opted = active_subscription(people)
    people.get_one(subscriptions.Subscription, opted).notify_new_versions = True
    faulty = samples_dir / "faulty" / "psga_population_20261122.csv"
    good = samples_dir / "psga_population_20261121.csv"

    for path, outcome in ((faulty, "quarantined"), (good, "published")):
        result = ingest_export(people, POPULATION, path.read_bytes(), path.name, raw_dir=tmp_path / "raw",
                               trigger="test")  # fmt: skip
        assert result.outcome == outcome

    assert sent_to(people, "batch_quarantined") == {"user:psga-steward", "user:ops"}
    assert sent_to(people, "version_published") == {"user:zsj-steward", "user:zsj-user"}
    settings = Settings(public_url="https://datashare.example.gov.cn")
    said = []
    for notification in people.scalars(select(Notification)):
        content = Content(notification.id, notification.kind, "psga", notification.item_code,
                          notification.subscription_id, notification.message, notification.detail,
                          notification.created_at)  # fmt: skip
        said += [notification.message, json.dumps(notification.detail, ensure_ascii=False), subject(content),
                 mail_body(content, settings), webhook_body(content, 1, settings).decode()]  # fmt: skip
    text = "\n".join(said)
    _, *rows = csv.reader(faulty.read_text(encoding="utf-8-sig").splitlines())
    rows += list(csv.reader(good.read_text(encoding="utf-8-sig").splitlines()))[1:]
    values = {cell for row in rows for cell in row if len(cell) >= 2}
    assert values and [value for value in values if value in text] == []


def test_a_raised_level_notice_now_has_deliveries_for_the_departments_people(people: Session) -> None:
    psga = people.scalar(select(Department.id).where(Department.code == "psga"))
    notify_all(people, [{"department_id": psga, "kind": "classification_raised", "item_code": POPULATION,
                         "subscription_id": None, "message": "raised", "detail": {}}])  # fmt: skip

    assert sent_to(people, "classification_raised") == {"user:psga-steward", "user:psga-user"}
