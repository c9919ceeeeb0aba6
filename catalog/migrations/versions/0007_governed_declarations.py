"""governed declarations: masking rules in proposals and decisions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("classification_proposal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_masking", sa.String(length=16), nullable=True))
    with op.batch_alter_table("field_review", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_masking", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("to_masking", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("field_review", schema=None) as batch_op:
        batch_op.drop_column("to_masking")
        batch_op.drop_column("from_masking")
    with op.batch_alter_table("classification_proposal", schema=None) as batch_op:
        batch_op.drop_column("proposed_masking")
