"""ingest run records: a batch is recorded as running before its work (host, pid), may be failed or interrupted,
counts rows that failed rules apart from rows refused with their batch, and names its file of every failing row

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_COLUMNS = (
    ("host", sa.String(length=255)),
    ("pid", sa.Integer()),
    ("rows_failed_rules", sa.Integer()),
    ("rows_refused_with_batch", sa.Integer()),
    ("failing_rows_path", sa.String(length=1000)),
    ("failing_rows_sha256", sa.String(length=64)),
)


def upgrade() -> None:
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        for name, column_type in NEW_COLUMNS:
            batch_op.add_column(sa.Column(name, column_type, nullable=True))
        batch_op.alter_column("finished_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    # Records of runs that never finished have no place in the older schema (it recorded finished runs only).
    op.execute(sa.text("DELETE FROM ingest_batch WHERE outcome IN ('running', 'failed', 'interrupted')"))
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.alter_column("finished_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        for name, _ in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
