"""one open subscription per consumer and item

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_STATUSES = "status IN ('requested', 'provider_approved', 'active')"


def upgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(
            "uq_subscription_open",
            ["item_id", "consumer_department_id"],
            unique=True,
            postgresql_where=sa.text(OPEN_STATUSES),
            sqlite_where=sa.text(OPEN_STATUSES),
        )


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index("uq_subscription_open")
