"""`datashare data verify`: verification look-ups from the command line, as a named user, with the API's checks,
masking and audit, on a fresh database of each backend."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from catalog.access.service import Principal
from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.settings import get_settings
from catalog.subscriptions import service as subscriptions

RULES = subscriptions.Rules(auto_approve_max_level=2, officer_level=3, max_days=366)


def test_a_verification_from_the_command_line(datashare: Any, tmp_path: Path, samples_dir: Path) -> None:
    datashare("demo")
    sample = samples_dir / "psga_population_20261121.csv"
    datashare("ingest", "PSGA-RK-0001", str(sample))
    engine = make_engine(str(get_settings().database_url))
    with session_scope(engine) as session:  # zsj verifies its applicants' community, approved up to level 2
        asked = subscriptions.SubscriptionCreate(item="PSGA-RK-0001", kind="verify", fields=["姓名", "所属社区"],
                                                 purpose="核验诉求人是否为本辖区居民", period_days=30,
                                                 legal_basis="深圳经济特区数据条例")  # fmt: skip
        made = subscriptions.request(session, RULES, asked, Principal("user:zsj-user", "zsj"))
        subscriptions.approve(session, RULES, made.id, Principal("user:psga-steward", "psga"), False)
        subscriptions.approve(session, RULES, made.id, Principal("user:officer", "sjj"), True, level=2)
    with sample.open(encoding="utf-8-sig") as export:
        first = next(csv.DictReader(export))
    records = tmp_path / "records.csv"
    records.write_text(f"公民身份号码,所属社区\n{first['公民身份号码']},{first['所属社区']}\n440300199001011234,\n",
                       encoding="utf-8")  # fmt: skip

    found = json.loads(datashare("data", "verify", "PSGA-RK-0001", str(records), "--as", "zsj-user", "--json").output)
    assert [result["match"] for result in found["results"]] == [True, False]
    assert found["results"][0]["fields"]["所属社区"] == first["所属社区"] and found["masked_fields"] == ["姓名"]
    table = datashare("data", "verify", "PSGA-RK-0001", str(records), "--as", "zsj-user").output
    assert "1 of 2 record(s) match" in table and first["姓名"] not in table
    refused = datashare("data", "verify", "PSGA-RK-0001", str(records), "--as", "wjj-user", expect=1).output
    assert "no active subscription" in refused
    with session_scope(engine) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.verify")).all()
        assert [(event.principal, event.detail["records"]) for event in events] == [("user:zsj-user", 2)] * 2
    engine.dispose()
