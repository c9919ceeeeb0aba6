"""verification subscriptions: a subscription's kind (read: the data; verify: look-ups by key of records the consumer
holds); version tables published from now on get an index on their key columns

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="read", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.drop_column("kind")
