"""`datashare audit list|seal|head|verify`, in process against the demo on a fresh database of each backend: the
trail read for a named officer (audited; refused with exit code 2 to others), sealed with a key made in the data
folder, its head shipped and checked, and a tampered event found with exit code 1."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog.audit.models import AuditEvent
from catalog.db import make_engine, session_scope
from catalog.settings import get_settings
from tests.catalog.audit import helpers


@pytest.fixture
def datashare(datashare: Any, tmp_path: Path) -> Any:
    """`datashare ARGS...` against the demo (catalog and principals) on a fresh database."""
    datashare("demo", "--samples", str(tmp_path / "no-samples"))
    return datashare


def audit_reads() -> list[tuple[str, str, dict[str, Any]]]:
    engine = make_engine(get_settings().resolved_database_url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(AuditEvent.principal, AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == "audit.read")
            .order_by(AuditEvent.id)
        ).all()
    engine.dispose()
    return [(principal, outcome, dict(detail)) for principal, outcome, detail in rows]


def test_an_officer_lists_the_trail_page_by_page_and_each_read_is_audited(datashare: Any) -> None:
    first = json.loads(datashare("audit", "list", "--officer", "officer", "--limit", "3", "--json").output)
    assert len(first["events"]) == 3 and first["next_before"] == first["events"][-1]["id"]
    before = str(first["next_before"])
    second = json.loads(
        datashare("audit", "list", "--officer", "officer", "--limit", "3", "--before", before, "--json").output
    )
    assert max(event["id"] for event in second["events"]) < first["next_before"]

    text = datashare("audit", "list", "--officer", "admin", "--action", "audit.read", "--since", "2020-01-01").output
    assert "user:officer" in text and "2 event(s); no more." in text
    assert [(who, outcome) for who, outcome, _ in audit_reads()] == [("user:officer", "done")] * 2 + [
        ("user:admin", "done")
    ]
    assert audit_reads()[-1][2]["filters"] == {"action": "audit.read", "since": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("who", "message"),
    [
        pytest.param("zsj-steward", "zsj-steward may not read the audit trail", id="steward"),
        pytest.param("nobody", "there is no active user nobody", id="unknown"),
    ],
)
def test_others_are_refused_with_exit_code_2_and_the_refusal_is_audited(datashare: Any, who: str, message: str) -> None:
    result = datashare("audit", "list", "--officer", who, expect=2)
    assert message in result.output
    assert [(principal, outcome) for principal, outcome, _ in audit_reads()] == [(f"user:{who}", "denied")]


def test_seal_head_and_verify_end_to_end_and_a_tampered_event_fails_verification(
    datashare: Any, tmp_path: Path
) -> None:
    assert "No audit block has been sealed yet" in datashare("audit", "head", expect=1).output
    assert "Verified 0 block(s), 0 event(s) and 0 head(s): OK." in datashare("audit", "verify").output

    sealed = datashare("audit", "seal").output
    assert "into 1 block(s)." in sealed and "Unsealed: 0 event(s)." in sealed
    settings = get_settings()
    assert stat.S_IMODE(settings.resolved_audit_signing_key_file.stat().st_mode) == 0o600
    head = json.loads(datashare("audit", "head", "--json").output)
    assert json.loads(settings.resolved_audit_heads_file.read_text()) == head
    shipped = tmp_path / "head-kept-elsewhere.json"
    shipped.write_text(json.dumps(head))

    assert "Verified 1 block(s)" in datashare("audit", "verify", "--head", str(shipped)).output
    engine = make_engine(settings.resolved_database_url)
    helpers.change(engine, 3)
    engine.dispose()

    failed = datashare("audit", "verify", "--head", str(shipped), expect=1).output
    assert "first: row_changed: event 3 was changed after it was sealed in block 1" in failed
    report = json.loads(datashare("audit", "verify", "--from-block", "1", "--to-block", "1", "--json", expect=1).output)
    assert (report["ok"], report["blocks_checked"], report["failures"][0]["audit_id"]) == (False, 1, 3)


def test_outside_local_mode_the_key_must_exist(datashare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASHARE_MODE", "production")
    monkeypatch.setenv("DATASHARE_SECRET_KEY", "a-production-secret-a-production-secret")
    get_settings.cache_clear()

    result = datashare("audit", "seal", expect=1)

    assert "outside local mode it is never created" in result.output
    assert not get_settings().resolved_audit_signing_key_file.exists()
