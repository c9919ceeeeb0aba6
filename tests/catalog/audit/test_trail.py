"""Reading the trail (in a rolled-back transaction on each backend): filters, keyset pages through any number of
events, the read audited, and only those whom the policy lets read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.access.models import UserAccount
from catalog.access.service import Principal, create_user
from catalog.audit import service as audit
from catalog.audit import trail
from catalog.audit.errors import ReaderNotFound, ReadForbidden
from catalog.audit.models import AuditEvent
from catalog.audit.schemas import AuditQuery
from catalog.departments.models import Department

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
READER = Principal("user:auditor", "sjj")


def write(session: Session, count: int, **values: object) -> None:
    """``count`` events a minute apart from T0, principal user:tester unless given."""
    rows = [audit.event(str(values.get("principal", "user:tester")), str(values.get("department", "wjj")),
                        str(values.get("action", "data.read")), "done", item_code="PSGA-RK-0001", rows=n)
            | {"at": T0 + timedelta(minutes=n)} for n in range(count)]  # fmt: skip
    audit.write(session.connection(), rows)


def query(**filters: object) -> AuditQuery:
    return AuditQuery.model_validate({"principal": "user:tester"} | filters)


def test_pages_go_on_newest_first_until_every_event_was_read(session: Session) -> None:
    write(session, 25)
    seen: list[int] = []
    before = None
    for _ in range(4):
        page = trail.page(session, query(limit=10, before=before), READER)
        seen += [event.id for event in page.events]
        before = page.next_before
        if before is None:
            break
    assert len(seen) == 25 and seen == sorted(seen, reverse=True) and len(set(seen)) == 25
    assert page.next_before is None and len(page.events) == 5


def test_filters_by_action_principal_department_item_and_time(session: Session) -> None:
    write(session, 10)
    write(session, 3, principal="user:other", department="zsj", action="subscription.approve")

    def count(**filters: object) -> int:
        return len(trail.page(session, AuditQuery.model_validate({"limit": 1000} | filters), READER).events)

    assert count(principal="user:other") == 3
    assert count(principal="user:other", action="data.read") == 0
    assert count(department="zsj", action="subscription.approve", item="PSGA-RK-0001") == 3
    assert count(principal="user:tester", since=T0 + timedelta(minutes=4), until=T0 + timedelta(minutes=7)) == 3
    naive = (T0 + timedelta(minutes=8)).replace(tzinfo=None)  # no zone: UTC
    assert count(principal="user:tester", since=naive) == 2
    shifted = (T0 + timedelta(minutes=8)).astimezone(timezone(timedelta(hours=8)))  # Beijing time, the same instant
    assert count(principal="user:tester", since=shifted) == 2
    far = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5)))  # before year 1 in UTC: no error
    assert count(principal="user:tester", since=far) == 10


def test_reading_the_trail_is_audited_with_its_filters(session: Session) -> None:
    write(session, 3)
    page = trail.page(session, query(limit=2, since=T0), READER)

    assert "audit.read" not in {event.action for event in page.events}
    logged = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.read")).all()
    assert [(e.principal, e.department, e.outcome, e.rows) for e in logged] == [("user:auditor", "sjj", "done", 2)]
    assert logged[0].detail == {
        "filters": {"principal": "user:tester", "since": "2026-12-01T08:00:00Z"},
        "before": None, "limit": 2, "next_before": page.next_before,
    }  # fmt: skip


def test_only_active_users_the_policy_lets_read_may_read(session: Session) -> None:
    session.add(Department(code="sjj", name_zh="数据局", name_en="Data bureau", kind="district_unit"))
    session.flush()
    for username, role in (("auditor", "data_officer"), ("admin-a", "platform_admin"), ("clerk", "user")):
        create_user(session, "sjj", username, username, "correct horse battery staple", [role])

    assert trail.reader(session, "auditor") == READER
    assert trail.reader(session, "admin-a").subject == "user:admin-a"
    with pytest.raises(ReadForbidden, match="clerk may not read the audit trail"):
        trail.reader(session, "clerk")
    with pytest.raises(ReaderNotFound, match="there is no active user nobody"):
        trail.reader(session, "nobody")
    session.execute(update(UserAccount).where(UserAccount.username == "auditor").values(active=False))
    with pytest.raises(ReaderNotFound):
        trail.reader(session, "auditor")
