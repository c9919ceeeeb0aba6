"""`datashare freshness` in process against the demo on a fresh database of each backend: a table readable with the
Chinese titles and a platform-wide line, the filters, JSON, and the exit code ops script on (0 every item shown on
time, 3 one late, 4 one overdue or never received, 1 an unknown department)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from catalog.db import make_engine, session_scope, utcnow
from catalog.items.models import ItemChange
from catalog.ops import feeds
from catalog.ops.models import ItemFeed
from catalog.settings import get_settings

POPULATION, ENTERPRISES, COMPLAINTS = "PSGA-RK-0001", "SCJG-FR-0001", "ZSJ-MS-0001"  # 0 2 * * *, @daily, hourly


@pytest.fixture
def datashare(datashare: Any, tmp_path: Path) -> Any:
    """`datashare ARGS...` against the demo catalog on a fresh database (nothing pulled yet)."""
    datashare("demo", "--samples", str(tmp_path / "no-samples"))
    return datashare


def received(ago: dict[str, timedelta]) -> None:
    """Each item's last export received this long ago; the others never, published two days ago."""
    engine = make_engine(get_settings().resolved_database_url)
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(delete(ItemFeed))
        session.execute(update(ItemChange).values(changed_at=now - timedelta(days=2)))
        for code, age in ago.items():
            feeds.record(session, code, feeds.PUBLISHED, at=now - age)
    engine.dispose()


def test_just_published_items_are_on_time_awaiting_their_first_export(datashare: Any) -> None:
    output = datashare("freshness").output  # exit code 0

    for text in ("人口基本信息", "企业登记信息", "民生诉求事件", POPULATION, "@daily", "0 * * * *", "on_time"):
        assert text in output, text
    assert "platform: 3 item(s), 3 on time, 0 late, 0 overdue, 0 never received" in output


def test_a_late_item_exits_3_and_an_overdue_or_never_received_one_exits_4(datashare: Any) -> None:
    received({POPULATION: timedelta(minutes=5), ENTERPRISES: timedelta(minutes=5), COMPLAINTS: timedelta(minutes=90)})
    late = datashare("freshness", expect=3).output
    assert "platform: 3 item(s), 2 on time, 1 late, 0 overdue, 0 never received" in late
    assert datashare("freshness", "--department", "psga").output.count(POPULATION) == 1  # on time: 0
    department = datashare("freshness", "--department", "zsj", expect=3).output
    assert "department zsj: 1 item(s), 0 on time, 1 late" in department and POPULATION not in department

    received({POPULATION: timedelta(minutes=5), ENTERPRISES: timedelta(days=3)})  # the complaints: never received
    behind = datashare("freshness", expect=4).output
    assert "platform: 3 item(s), 1 on time, 0 late, 1 overdue, 1 never received" in behind
    assert datashare("freshness", "--status", "on_time").output.count("on_time") == 1  # only what is shown counts
    assert datashare("freshness", "--status", "late").output.count("SCJG") == 0


def test_json_for_machines(datashare: Any) -> None:
    received({ENTERPRISES: timedelta(days=3)})
    body = json.loads(datashare("freshness", "--json", "--status", "overdue", expect=4).output)

    assert [(entry["item"], entry["status"], entry["title"]) for entry in body["items"]] == [
        (ENTERPRISES, "overdue", "企业登记信息")]  # fmt: skip
    assert body["overall"]["total"] == 3 and body["overall"]["overdue"] == 1
    assert body["items"][0]["due_at"] < body["as_of"] and body["items"][0]["last_check_outcome"] == "published"


def test_an_unknown_department_is_refused(datashare: Any) -> None:
    assert "department nowhere does not exist" in datashare("freshness", "--department", "nowhere", expect=1).output
    assert datashare("freshness", "--status", "green", expect=2).exit_code == 2
