"""utilisation figures: daily and monthly rollups of the uses of items (reads, verification look-ups, deliveries)
folded from the audit trail, and the fold's watermark

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _measures() -> list[sa.Column]:
    return [
        sa.Column(name, sa.BigInteger(), nullable=False)
        for name in ("reads", "rows_read", "verifications", "deliveries", "rows_delivered")
    ]


def upgrade() -> None:
    for table, bucket in (("usage_day", "day"), ("usage_month", "month")):
        op.create_table(
            table,
            sa.Column(bucket, sa.Date(), nullable=False),
            sa.Column("item_code", sa.String(length=64), nullable=False),
            sa.Column("department", sa.String(length=32), nullable=False),
            *_measures(),
            sa.PrimaryKeyConstraint(bucket, "item_code", "department", name=op.f(f"pk_{table}")),
        )
    fold = op.create_table(
        "usage_fold",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("folded_to", sa.Integer(), nullable=False),
        sa.Column("pending_to", sa.Integer(), nullable=True),
        sa.Column("pending_holders", sa.JSON(), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_fold")),
    )
    op.bulk_insert(fold, [{"id": 1, "folded_to": 0, "pending_to": None, "pending_holders": []}])


def downgrade() -> None:
    op.drop_table("usage_fold")
    op.drop_table("usage_month")
    op.drop_table("usage_day")
