"""The kinds of notification, each made where its event happens and in its transaction, so a rolled-back event
notifies no one. Texts are Chinese, then English, and name item codes, titles, departments, counts, batch and
subscription numbers only: never a cell value, a person, or free text someone typed (a rejection's reason is read in
the platform)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from catalog.classification.models import ClassificationProposal
from catalog.db import utcnow
from catalog.departments.models import Department
from catalog.ingest.models import IngestBatch
from catalog.items.models import CatalogItem
from catalog.notifications.audiences import DATA_OFFICERS, DEPARTMENT, OPS, STEWARDS
from catalog.notifications.models import Notification
from catalog.notifications.service import notify_all
from catalog.subscriptions.models import Subscription

EXPIRY_NOTICE = timedelta(days=7)
DIGEST_ITEMS_NAMED = 20  # the digest names at most this many items, and counts the rest
_DECISIONS = {"active": ("已获批准", "approved"), "rejected": ("被驳回", "rejected"), "revoked": ("被撤销", "revoked")}


class Freshness(Protocol):
    """What ``item_late`` reads of catalog.ops.freshness.ItemFreshness."""

    @property
    def item(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def status(self) -> str: ...  # late | overdue | never_received
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def last_received_at(self) -> datetime | None: ...


def subscription_changed(session: Session, subscription_id: int) -> None:
    """After a subscription's status changed: a request awaits the provider's stewards, then data officers; the
    consumer hears it was approved, rejected or revoked, or has expired."""
    found = session.execute(
        select(Subscription, CatalogItem, Department.code)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .join(Department, Department.id == Subscription.consumer_department_id)
        .where(Subscription.id == subscription_id)
    ).one_or_none()
    if found is None:
        return
    subscription, item, consumer = found
    if subscription.status in ("requested", "provider_approved"):
        _awaiting(session, subscription, item, consumer)
    elif subscription.status in _DECISIONS:
        _decided(session, subscription, item)
    elif subscription.status == "expired":
        message = (f"贵部门对 {item.code}（{item.title}）的订阅 {subscription.id} 已到期，不再提供数据；"
                   "如需继续使用请重新申请。\n"
                   f"Your department's subscription {subscription.id} to {item.code} ({item.title}) has expired; "
                   "request a new one to go on reading.")  # fmt: skip
        _notify(session, subscription.consumer_department_id, DEPARTMENT, "subscription_expired", message, {},
                item_code=item.code, subscription_id=subscription.id)  # fmt: skip


def subscriptions_expiring(session: Session, now: datetime | None = None) -> list[int]:
    """Tell each consumer, once, that an active subscription ends within a week; the subscriptions' ids."""
    now = now or utcnow()
    due = session.scalars(
        select(Subscription.id).where(
            Subscription.status == "active", Subscription.expires_at > now,
            Subscription.expires_at <= now + EXPIRY_NOTICE, Subscription.expiry_notice_at.is_(None),
        )
    ).all()  # fmt: skip
    noticed = []
    for subscription_id in due:
        marked = session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id, Subscription.expiry_notice_at.is_(None))
            .values(expiry_notice_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount == 1:  # type: ignore[attr-defined]
            _expiring(session, subscription_id)
            noticed.append(subscription_id)
    return noticed


def batch_quarantined(session: Session, item_code: str, batch_id: int, reasons: Sequence[str]) -> None:
    """A batch was quarantined: the provider's stewards and ops. Reasons are counted, never quoted (a quality
    report's texts may quote cells)."""
    item = _item(session, item_code)
    batch = session.get(IngestBatch, batch_id)
    rows_read = batch.rows_read if batch is not None else 0
    message = (f"{item.code}（{item.title}）的批次 {batch_id} 已隔离：读取 {rows_read} 行，{len(reasons)} 项原因。"
               "当前版本保持不变，请查看质量报告后放行或丢弃。\n"
               f"Batch {batch_id} of {item.code} ({item.title}) was quarantined: {rows_read} row(s) read, "
               f"{len(reasons)} reason(s). The current version stays; see the quality report, then release or "
               "discard it.")  # fmt: skip
    detail = {"batch_id": batch_id, "reasons": len(reasons), "rows_read": rows_read}
    for audience in (STEWARDS, OPS):
        _notify(session, item.department_id, audience, "batch_quarantined", message, detail, item_code=item.code)


def item_late(session: Session, freshness: Freshness) -> bool:
    """An item's department sent nothing by its due time: the stewards and ops, once per due time and status.
    True when notified."""
    department_id = session.scalar(select(Department.id).where(Department.code == freshness.department))
    due = freshness.due_at.isoformat() if freshness.due_at else None
    last = session.scalar(
        select(Notification.detail)
        .where(Notification.kind == "item_late", Notification.item_code == freshness.item)
        .order_by(Notification.id.desc())
        .limit(1)
    )
    if last and (last.get("due_at"), last.get("status")) == (due, freshness.status):
        return False
    when = f"{freshness.due_at:%Y-%m-%d %H:%M} UTC" if freshness.due_at else "—"
    received = f"{freshness.last_received_at:%Y-%m-%d %H:%M} UTC" if freshness.last_received_at else "从未 / never"
    message = (f"{freshness.item}（{freshness.title}）未按时更新（{freshness.status}）：应于 {when} 前收到，"
               f"最近一次收到：{received}。\n"
               f"{freshness.item} ({freshness.title}) is {freshness.status.replace('_', ' ')}: an export was due by "
               f"{when}; last received: {received}.")  # fmt: skip
    detail = {
        "status": freshness.status,
        "due_at": due,
        "last_received_at": freshness.last_received_at.isoformat() if freshness.last_received_at else None,
    }
    for audience in (STEWARDS, OPS):
        _notify(session, department_id, audience, "item_late", message, detail, item_code=freshness.item)
    return True


def version_published(session: Session, item_code: str, version: int | None) -> int:
    """A new version of an item: the consumers whose active subscriptions asked for it. How many were told."""
    if version is None:
        return 0
    item = _item(session, item_code)
    subscribed = session.execute(
        select(Subscription.id, Subscription.consumer_department_id).where(
            Subscription.item_id == item.id, Subscription.status == "active",
            Subscription.notify_new_versions.is_(True), Subscription.expires_at > utcnow(),
        )
    ).all()  # fmt: skip
    message = (f"贵部门订阅的 {item.code}（{item.title}）发布了第 {version} 版。\n"
               f"Version {version} of {item.code} ({item.title}), which your department subscribes to, is "
               "published.")  # fmt: skip
    for subscription_id, consumer_id in subscribed:
        _notify(session, consumer_id, DEPARTMENT, "version_published", message, {"version": version},
                item_code=item.code, subscription_id=subscription_id)  # fmt: skip
    return len(subscribed)


def delivery_failed(session: Session, consumer_id: int, consumer: str, item_code: str, version: int, target: str,
                    subscription_id: int, delivery_id: int) -> None:  # fmt: skip
    """A push delivery failed: ops and the consumer's stewards, once per target and version (the reason is on the
    delivery's record, for those who may read it)."""
    message = (f"{item_code} 第 {version} 版未能推送到 {consumer} 的目标 {target}（推送记录 {delivery_id}），"
               "下次运行时将重试。\n"
               f"Version {version} of {item_code} could not be delivered to {consumer}'s target {target} (delivery "
               f"{delivery_id}); the next run tries again.")  # fmt: skip
    detail = {"version": version, "target": target, "delivery": delivery_id, "consumer": consumer}
    for audience in (STEWARDS, OPS):
        _notify(session, consumer_id, audience, "delivery_failed", message, detail, item_code=item_code,
                subscription_id=subscription_id)  # fmt: skip


def detection_digest(session: Session, day: date) -> Notification | None:
    """The data officers' daily digest of the proposals detection made on ``day`` (UTC): counts per item. Made
    once per day, and only when there were any."""
    marker = {"day": day.isoformat()}
    existing = session.scalars(select(Notification.detail).where(Notification.kind == "detection_digest")).all()
    if any(detail.get("day") == marker["day"] for detail in existing):
        return None
    start = datetime.combine(day, time(), tzinfo=UTC)
    counts = session.execute(
        select(CatalogItem.code, func.count())
        .select_from(ClassificationProposal)
        .join(CatalogItem, CatalogItem.id == ClassificationProposal.item_id)
        .where(ClassificationProposal.source == "detection", ClassificationProposal.created_at >= start,
               ClassificationProposal.created_at < start + timedelta(days=1))
        .group_by(CatalogItem.code)
        .order_by(func.count().desc(), CatalogItem.code)
    ).all()  # fmt: skip
    if not counts:
        return None
    total = sum(count for _, count in counts)
    named = "、".join(f"{code}（{count}）" for code, count in counts[:DIGEST_ITEMS_NAMED])
    more = len(counts) - DIGEST_ITEMS_NAMED
    rest = f" …+{more}" if more > 0 else ""
    message = (f"{day:%Y-%m-%d} 自动检测提出 {total} 条新的分级建议，涉及 {len(counts)} 个数据项：{named}{rest}。"
               "请在审核队列中处理。\n"
               f"On {day:%Y-%m-%d} detection proposed {total} new classification(s) in {len(counts)} item(s): "
               f"{', '.join(f'{code} ({count})' for code, count in counts[:DIGEST_ITEMS_NAMED])}{rest}. See the "
               "review queue.")  # fmt: skip
    detail = {**marker, "proposals": total, "items": {code: count for code, count in counts}}
    return _notify(session, None, DATA_OFFICERS, "detection_digest", message, detail)


def renewal_changed(session: Session, subscription_id: int) -> None:
    """A renewal awaits the provider's stewards (requested), then data officers (provider approved)."""
    subscription, item, consumer = _with_item_and_consumer(session, subscription_id)
    stewards = subscription.reapproval_status == "requested"
    days = subscription.renewal_days
    message = (f"{consumer} 申请将订阅 {subscription.id}（{item.code}（{item.title}））续期 {days} 天，"
               f"待{'提供部门' if stewards else '数据官'}审批；审批期间数据照常提供至原到期日。\n"
               f"{consumer} asks to renew subscription {subscription.id} to {item.code} ({item.title}) for {days} "
               f"day(s): it awaits the {'provider' if stewards else 'data officer'}'s approval; the data keeps "
               "flowing until the old end meanwhile.")  # fmt: skip
    _notify(session, item.department_id, STEWARDS if stewards else DATA_OFFICERS, "renewal_awaits_approval",
            message, {"consumer": consumer, "days": days, "status": subscription.reapproval_status},
            item_code=item.code, subscription_id=subscription.id)  # fmt: skip


def renewal_decided(session: Session, subscription_id: int, renewed: bool) -> None:
    """The consumer hears its renewal was approved (and the new end) or turned down (the old end stands)."""
    subscription, item, _ = _with_item_and_consumer(session, subscription_id)
    ends = f"{subscription.expires_at:%Y-%m-%d %H:%M} UTC" if subscription.expires_at else "—"
    if renewed:
        message = (f"贵部门对 {item.code}（{item.title}）的订阅 {subscription.id} 已续期，新的到期时间为 {ends}。\n"
                   f"Your department's subscription {subscription.id} to {item.code} ({item.title}) was renewed "
                   f"until {ends}.")  # fmt: skip
    else:
        message = (f"贵部门对 {item.code}（{item.title}）的订阅 {subscription.id} 的续期申请被驳回，"
                   f"订阅仍于 {ends} 到期。\n"
                   f"The renewal of your department's subscription {subscription.id} to {item.code} ({item.title}) "
                   f"was turned down; it still ends on {ends}.")  # fmt: skip
    detail = {"decision": "renewed" if renewed else "rejected",
              "expires_at": subscription.expires_at.isoformat() if subscription.expires_at else None}  # fmt: skip
    _notify(session, subscription.consumer_department_id, DEPARTMENT, "renewal_decided", message, detail,
            item_code=item.code, subscription_id=subscription.id)  # fmt: skip


def _with_item_and_consumer(session: Session, subscription_id: int) -> tuple[Subscription, CatalogItem, str]:
    subscription, item, consumer = session.execute(
        select(Subscription, CatalogItem, Department.code)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .join(Department, Department.id == Subscription.consumer_department_id)
        .where(Subscription.id == subscription_id)
    ).one()
    return subscription, item, consumer


def _awaiting(session: Session, subscription: Subscription, item: CatalogItem, consumer: str) -> None:
    """A request for the provider's stewards (requested), then for data officers (provider approved)."""
    stewards = subscription.status == "requested"
    fields = len(subscription.fields)
    message = (f"{consumer} 申请订阅 {item.code}（{item.title}）的 {fields} 个字段（订阅 {subscription.id}），"
               f"待{'提供部门' if stewards else '数据官'}审批。\n"
               f"{consumer} asks to subscribe to {fields} field(s) of {item.code} ({item.title}): subscription "
               f"{subscription.id} awaits the {'provider' if stewards else 'data officer'}'s approval.")  # fmt: skip
    _notify(session, item.department_id, STEWARDS if stewards else DATA_OFFICERS, "subscription_awaits_approval",
            message, {"consumer": consumer, "fields": fields, "status": subscription.status}, item_code=item.code,
            subscription_id=subscription.id)  # fmt: skip


def _decided(session: Session, subscription: Subscription, item: CatalogItem) -> None:
    chinese, english = _DECISIONS[subscription.status]
    message = (f"贵部门对 {item.code}（{item.title}）的订阅 {subscription.id} {chinese}。\n"
               f"Your department's subscription {subscription.id} to {item.code} ({item.title}) was "
               f"{english}.")  # fmt: skip
    _notify(session, subscription.consumer_department_id, DEPARTMENT, "subscription_decided", message,
            {"decision": english, "approved_level": subscription.approved_level}, item_code=item.code,
            subscription_id=subscription.id)  # fmt: skip


def _expiring(session: Session, subscription_id: int) -> None:
    subscription, item = session.execute(
        select(Subscription, CatalogItem)
        .join(CatalogItem, CatalogItem.id == Subscription.item_id)
        .where(Subscription.id == subscription_id)
    ).one()
    ends = f"{subscription.expires_at:%Y-%m-%d %H:%M} UTC"
    message = (f"贵部门对 {item.code}（{item.title}）的订阅 {subscription_id} 将于 {ends} 到期；"
               "如需继续使用请在到期前申请续期。\n"
               f"Your department's subscription {subscription_id} to {item.code} ({item.title}) expires on {ends}; "
               "renew it before then to go on reading.")  # fmt: skip
    _notify(session, subscription.consumer_department_id, DEPARTMENT, "subscription_expiring", message,
            {"expires_at": subscription.expires_at.isoformat() if subscription.expires_at else None},
            item_code=item.code, subscription_id=subscription_id)  # fmt: skip


def _item(session: Session, item_code: str) -> CatalogItem:
    return session.scalars(select(CatalogItem).where(CatalogItem.code == item_code)).one()


def _notify(
    session: Session, department_id: int | None, audience: str, kind: str, message: str, detail: dict[str, Any],
    item_code: str | None = None, subscription_id: int | None = None,
) -> Notification:  # fmt: skip
    row = {"department_id": department_id, "audience": audience, "kind": kind, "item_code": item_code,
           "subscription_id": subscription_id, "message": message, "detail": detail}  # fmt: skip
    return notify_all(session, [row])[0]
