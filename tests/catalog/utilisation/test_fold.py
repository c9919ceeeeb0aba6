"""Folding under concurrency: two folds at once count each event once; on PostgreSQL an event whose transaction is
still running below the newest id is never skipped, and the figures read what is not folded yet live."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from catalog.db import make_engine, session_scope, utcnow
from catalog.utilisation import figures
from catalog.utilisation.fold import fold
from catalog.utilisation.models import UsageDay, UsageFold
from tests.catalog.helpers import import_demo
from tests.catalog.utilisation.fixture import use

ITEM = "PSGA-RK-0001"


@pytest.fixture
def fresh(backend: str, database_factory: Any) -> Iterator[Engine]:
    engine = make_engine(database_factory(backend))
    with session_scope(engine) as session:
        import_demo(session)
    yield engine
    engine.dispose()


def reads(session: Session) -> int:
    found = figures.platform(session, lambda consumer, provider: True)
    return found.platform.uses.reads


def rolled_up(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.coalesce(func.sum(UsageDay.reads), 0))) or 0)


def test_two_folds_at_once_count_each_event_once(fresh: Engine) -> None:
    with session_scope(fresh) as session:
        for _ in range(5):
            use(session, utcnow(), "zsj", "data.read", "allowed", ITEM, 1)
    first = Session(fresh)
    assert fold(first).events >= 5  # holds the watermark row (PostgreSQL) or the write lock (SQLite)
    done: list[int] = []
    second = threading.Thread(target=lambda: done.append(_fold_alone(fresh)))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waits for the first fold's transaction
    first.commit()
    first.close()
    second.join(10)
    assert done == [0] and rolled_up(fresh) == 5


def _fold_alone(engine: Engine) -> int:
    with session_scope(engine) as session:
        return fold(session).events


def test_an_event_of_a_transaction_still_running_is_read_live_then_folded_once(fresh: Engine, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: every event a fold sees is final")
    running = Session(fresh)
    use(running, utcnow(), "wjj", "data.read", "allowed", ITEM, 1)  # an id drawn, not committed yet
    running.flush()
    with session_scope(fresh) as session:
        for _ in range(3):
            use(session, utcnow(), "zsj", "data.read", "allowed", ITEM, 1)  # higher ids, committed first
    with session_scope(fresh) as session:
        assert reads(session) == 3  # read live: not folded past the running transaction's id
    assert rolled_up(fresh) == 0
    with Session(fresh) as session:
        assert session.get(UsageFold, 1).pending_holders  # type: ignore[union-attr]
    running.commit()
    running.close()
    with session_scope(fresh) as session:
        assert reads(session) == 4
    assert rolled_up(fresh) == 4  # the remembered id is reached once the transaction has ended
    with session_scope(fresh) as session:
        assert reads(session) == 4
    assert rolled_up(fresh) == 4
