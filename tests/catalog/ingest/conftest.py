from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.db import make_engine, session_scope
from tests.catalog.helpers import import_demo


@pytest.fixture
def demo(session: Session) -> Session:
    """The demo catalog, imported: its items are what the sample exports are ingested into."""
    import_demo(session)
    return session


@pytest.fixture
def platform(backend: str, database_factory: Any) -> Iterator[Engine]:
    """A fresh database with the demo catalog committed, for runs that commit in transactions of their own."""
    engine = make_engine(database_factory(backend))
    with session_scope(engine) as session:
        import_demo(session)
    yield engine
    engine.dispose()
