"""Recording an item's feed: the ingestion path notes each pull's outcome in the transaction that records it.

An export is *received* when a pull finds one, whatever becomes of it (published, quarantined, or the same export
again: the department delivered); a version is *published* by the pipeline or by an operator's release; every pull
is a *check*, the ones that find nothing included, so ops can tell a department that sent nothing from a pipeline
that did not run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog.db import utcnow
from catalog.items.models import CatalogItem
from catalog.ops.models import ItemFeed

NO_EXPORT, DUPLICATE, PUBLISHED, QUARANTINED = "no_export", "duplicate", "published", "quarantined"
FAILED, INTERRUPTED, RELEASED = "failed", "interrupted", "released"
# The same file still lying in the drop folder (same name, same bytes) is not a delivery; the same bytes under a new
# name, or a query or API that answers as before, is (DUPLICATE).
UNCHANGED = "unchanged"
CHECK_OUTCOMES = (NO_EXPORT, UNCHANGED, DUPLICATE, PUBLISHED, QUARANTINED, FAILED, INTERRUPTED)  # what a pull finds
RECEIVED = frozenset({DUPLICATE, PUBLISHED, QUARANTINED})
NEW_VERSION = frozenset({PUBLISHED, RELEASED})


def record(session: Session, item_code: str, outcome: str, at: datetime | None = None) -> None:
    """Note an outcome of the item's ingestion: a pull's (one of ``CHECK_OUTCOMES``) or an operator's release."""
    if outcome not in CHECK_OUTCOMES and outcome != RELEASED:
        raise ValueError(f"{outcome!r} is not an outcome of a pull or a release")
    item_id = session.scalar(select(CatalogItem.id).where(CatalogItem.code == item_code))
    if item_id is None:
        return  # nothing to note about an item that is not there (the caller refuses it)
    moment = at or utcnow()
    values: dict[str, Any] = {}
    if outcome in RECEIVED:
        values["last_received_at"] = moment
    if outcome in NEW_VERSION:
        values["last_published_at"] = moment
    if outcome in CHECK_OUTCOMES:
        values["last_checked_at"], values["last_check_outcome"] = moment, outcome
    upsert(session, item_id, values)


def upsert(session: Session, item_id: int, values: dict[str, Any]) -> None:
    """Set these columns of the item's feed row, making the row if it is not there (concurrent pulls of one item
    may both be first: the database settles it, never a unique violation)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ItemFeed).values(item_id=item_id, **values)
    session.execute(statement.on_conflict_do_update(index_elements=[ItemFeed.item_id], set_=values))
