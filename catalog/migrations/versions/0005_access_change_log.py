"""access change log: what API processes must forget, under consecutive revisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_change")),
    )
    with op.batch_alter_table("access_change", schema=None) as batch_op:
        batch_op.create_index("ix_access_change_revision", ["revision"], unique=False)
    op.execute("INSERT INTO policy_revision (id, revision) VALUES (2, 0)")


def downgrade() -> None:
    op.execute("DELETE FROM policy_revision WHERE id = 2")
    with op.batch_alter_table("access_change", schema=None) as batch_op:
        batch_op.drop_index("ix_access_change_revision")
    op.drop_table("access_change")
