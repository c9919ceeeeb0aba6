"""Writing audit events, sealing them, and tampering with them as a database owner would: triggers dropped first,
put back after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update

from catalog.audit import chain, heads
from catalog.audit import service as audit
from catalog.audit.models import AuditBlock, AuditEvent
from catalog.audit.schemas import SealReport, VerificationRead
from catalog.audit.signing import AuditKey, load_key
from catalog.audit.verification import verify
from catalog.db import session_scope

START = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)


def event(number: int) -> dict[str, Any]:
    """A realistic event's values: a masked read, Chinese field names, a nested detail."""
    values = audit.event(f"user:reader-{number % 3}", "psga", "data.read", "done", item_code="PSGA-RK-0001",
                         version=1, subscription_id=7, fields_returned=["姓名", "所属社区"],
                         fields_masked=["公民身份号码"], rows=number, filters={"after": number, "limit": 100},
                         format="json")  # fmt: skip
    return values | {"at": START + timedelta(seconds=number)}


def write_events(engine: Engine, count: int, *, gap_after: int | None = None) -> None:
    """``count`` events, each committed alone; with ``gap_after`` the id after that event is left unused, as a
    rolled-back transaction leaves it (PostgreSQL: a real rollback; SQLite reuses a rolled-back id, so the next
    event is given the id after it)."""
    for number in range(1, count + 1):
        with engine.begin() as connection:
            values = event(number)
            if number - 1 == gap_after and engine.dialect.name == "sqlite":
                values["id"] = (connection.scalar(select(func.max(AuditEvent.id))) or 0) + 2
            connection.execute(insert(AuditEvent), [values])
        if number == gap_after and engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                connection.execute(insert(AuditEvent), [event(0)])
                connection.rollback()


def make_key(folder: Path) -> AuditKey:
    return load_key(folder / "signing-key.pem", create=True, strict=True)


def seal(engine: Engine, key: AuditKey, heads_file: Path | None, block_size: int = 10) -> SealReport:
    """What the seal_audit DAG's seal task does: seal in a transaction of its own, then publish the head."""
    with session_scope(engine) as session:
        report = chain.seal(session, key, block_size=block_size, wait_seconds=5)
    if heads_file is not None and report.head is not None:
        heads.publish(heads_file, report.head)
    return report


def check(engine: Engine, keys: frozenset[str], heads_file: Path | None = None, **options: Any) -> VerificationRead:
    with session_scope(engine) as session:
        return VerificationRead.model_validate(
            verify(session, trusted_keys=keys, heads_file=heads_file, by="test", **options)
        )


# --- tampering, as the owner of the database ------------------------------------------------------------------

SQLITE_TRIGGERS = {
    "audit_event": ["audit_event_no_update", "audit_event_no_delete"],
    "audit_block": ["audit_block_no_update", "audit_block_no_delete"],
}


@contextmanager
def triggers_dropped(engine: Engine, table: str = "audit_event") -> Iterator[Connection]:
    """A connection on which ``table``'s append-only triggers are gone; they are back afterwards."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
        else:
            for name in SQLITE_TRIGGERS[table]:
                connection.execute(text(f"DROP TRIGGER {name}"))
        yield connection
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                                    f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"))  # fmt: skip
        else:
            for name in SQLITE_TRIGGERS[table]:
                operation = "UPDATE" if name.endswith("update") else "DELETE"
                connection.execute(text(f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
                                        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"))  # fmt: skip


def change(engine: Engine, event_id: int) -> None:
    with triggers_dropped(engine) as connection:
        connection.execute(
            update(AuditEvent).where(AuditEvent.id == event_id).values(principal=AuditEvent.principal + "~")
        )


def delete(engine: Engine, event_id: int) -> None:
    with triggers_dropped(engine) as connection:
        connection.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": event_id})


def insert_at(engine: Engine, event_id: int) -> None:
    """An event slipped into a sealed range, at an id nothing holds (no trigger guards inserts: none to drop)."""
    with engine.begin() as connection:
        connection.execute(insert(AuditEvent), [event(999) | {"id": event_id}])


def swap(engine: Engine, first: int, second: int) -> None:
    """Two events trade places in the trail's order (their ids swapped)."""
    with triggers_dropped(engine) as connection:
        for old, new in ((first, -1), (second, first), (-1, second)):
            connection.execute(text("UPDATE audit_event SET id = :new WHERE id = :old"), {"old": old, "new": new})


def blocks(engine: Engine) -> list[AuditBlock]:
    with session_scope(engine) as session:
        return list(session.scalars(select(AuditBlock).order_by(AuditBlock.id)))


def seal_what_is_there(engine: Engine, key: AuditKey) -> tuple[int, int]:
    """Seal the events a fresh database already has (migrations may write some): (the last id, the last block)."""
    report = seal(engine, key, None, block_size=1_000)
    return (report.head.last_id, report.head.block) if report.head else (0, 0)
