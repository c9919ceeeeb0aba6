"""item feeds: when each item last received an export, last published and was last checked

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the run records already tell: an export was received when a run over it settled (the same export again left
# no row before this revision); a version was published when it was. Checks were not recorded: left empty.
BACKFILL = """
INSERT INTO item_feed (item_id, last_received_at, last_published_at)
SELECT catalog_item.id,
       (SELECT max(ingest_batch.started_at) FROM ingest_batch
         WHERE ingest_batch.item_id = catalog_item.id
           AND ingest_batch.outcome IN ('published', 'quarantined', 'released', 'discarded')),
       (SELECT max(item_version.published_at) FROM item_version WHERE item_version.item_id = catalog_item.id)
FROM catalog_item
WHERE EXISTS (SELECT 1 FROM ingest_batch WHERE ingest_batch.item_id = catalog_item.id)
   OR EXISTS (SELECT 1 FROM item_version WHERE item_version.item_id = catalog_item.id)
"""


def upgrade() -> None:
    op.create_table(
        "item_feed",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_check_outcome", sa.String(length=16), nullable=True),
        sa.Column("notified_status", sa.String(length=16), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["catalog_item.id"], name=op.f("fk_item_feed_item_id_catalog_item"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_feed")),
    )
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    op.drop_table("item_feed")
