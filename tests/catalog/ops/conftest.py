from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.catalog.helpers import import_demo


@pytest.fixture
def demo(session: Session) -> Session:
    """The demo catalog, imported: three published items pulled from source systems, hourly (ZSJ-MS-0001), daily
    (SCJG-FR-0001, @daily) and by a cron expression (PSGA-RK-0001, 0 2 * * *)."""
    import_demo(session)
    return session
