"""`datashare notifications …` in process against the demo on a fresh database of each backend: demo people have
addresses; changes act for a named person the policy allows (a refusal exits 2 and is audited); ops list failed
deliveries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from catalog.access.models import UserAccount
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.notifications import notices
from catalog.notifications.models import NotificationDelivery
from catalog.settings import get_settings


@pytest.fixture
def datashare(datashare: Any, tmp_path: Path) -> Any:
    datashare("demo", "--samples", str(tmp_path / "no-samples"))
    return datashare


def test_demo_people_have_addresses_and_admins_change_them(datashare: Any) -> None:
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        addresses = {
            row.username: row.email for row in session.execute(select(UserAccount.username, UserAccount.email))
        }
    assert addresses["psga-steward"] == "psga-steward@example.gov.cn" and addresses["ops"] == "ops@example.gov.cn"

    datashare("notifications", "email", "psga-steward", "li.na@psga.example.gov.cn", "--as", "psga-steward", expect=2)
    datashare("notifications", "email", "psga-steward", "li.na@psga.example.gov.cn", "--as", "admin")
    datashare("notifications", "email", "zsj-user", "--clear", "--as", "admin")
    with session_scope(engine) as session:
        changed = {row.username: row.email for row in session.execute(select(UserAccount.username, UserAccount.email))}
        refusals = session.scalars(
            select(AuditEvent.principal).where(AuditEvent.action == "users.manage", AuditEvent.outcome == "denied")
        ).all()
    engine.dispose()
    assert (changed["psga-steward"], changed["zsj-user"]) == ("li.na@psga.example.gov.cn", None)
    assert refusals == ["user:psga-steward"]


def test_channels_are_added_by_the_departments_steward_only(datashare: Any) -> None:
    url = "https://hooks.psga.example.gov.cn/datashare"
    refused = datashare("notifications", "channel-add", "psga", "alerts", url, "--as", "zsj-steward", expect=2)
    assert "zsj-steward may not manage notification_channel for department psga" in refused.output

    added = datashare("notifications", "channel-add", "psga", "alerts", url, "--as", "psga-steward")
    assert "$PSGA_ALERTS_WEBHOOK_SECRET" in added.output
    datashare("notifications", "channel-set", "1", "--disable", "--as", "psga-steward")
    listed = datashare("notifications", "channels", "--department", "psga")
    assert "psga  alerts  disabled" in listed.output


def test_ops_list_failed_deliveries_and_retry_them(datashare: Any) -> None:
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        notices.batch_quarantined(session, "PSGA-RK-0001", 3, ["rule"])
        session.execute(update(NotificationDelivery).values(status="gave_up", attempts=8, last_error="SMTP 451"))
        first = session.scalars(select(NotificationDelivery.id).order_by(NotificationDelivery.id)).first()
    engine.dispose()

    failed = datashare("notifications", "deliveries", "--failed").output
    assert "gave_up" in failed and "batch_quarantined" in failed and "failing now: email 2, webhook 0." in failed
    datashare("notifications", "retry", str(first), "--as", "psga-steward", expect=2)
    assert "is due again (retrying)" in datashare("notifications", "retry", str(first), "--as", "ops").output
    assert "claimed 0" in datashare("notifications", "deliver").output  # no SMTP host here: mail waits


def test_a_sixth_channel_and_a_taken_secret_variable_are_refused_by_name(datashare: Any) -> None:
    url = "https://hooks.psga.example.gov.cn/datashare"
    for n in range(5):
        datashare("notifications", "channel-add", "psga", f"hook-{n}", url, "--as", "psga-steward")

    sixth = datashare("notifications", "channel-add", "psga", "hook-5", url, "--as", "psga-steward", expect=1)
    taken = datashare("notifications", "channel-add", "zsj", "hook-0", url, "--as", "zsj-steward")

    assert "psga has 5 channels, the most a department may have: delete one first" in sixth.output
    assert "$ZSJ_HOOK_0_WEBHOOK_SECRET" in taken.output  # the same name in another department: its own variable
