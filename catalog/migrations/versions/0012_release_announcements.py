"""release announcements: when a published or released batch's version was announced as its item's Airflow Asset
event (a release through the API or the command line is announced by the announce_releases DAG); run records indexed
by outcome and by item for the runs API

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
    # Batches settled before this revision were announced by the run that published them, or need no event.
    op.execute(sa.text("UPDATE ingest_batch SET announced_at = finished_at WHERE outcome IN ('published', 'released')"))
    op.create_index("ix_ingest_batch_outcome_id", "ingest_batch", ["outcome", "id"])
    op.create_index("ix_ingest_batch_item_id_id", "ingest_batch", ["item_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_batch_item_id_id", table_name="ingest_batch")
    op.drop_index("ix_ingest_batch_outcome_id", table_name="ingest_batch")
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.drop_column("announced_at")
