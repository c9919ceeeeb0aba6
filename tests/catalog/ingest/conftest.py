from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.catalog.helpers import import_demo


@pytest.fixture
def demo(session: Session) -> Session:
    """The demo catalog, imported: its items are what the sample exports are ingested into."""
    import_demo(session)
    return session
