"""review queue: the pending fields of each item read from an index on (review_status, item_id, name)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_item_field_review_status", "item_field", ["review_status", "item_id", "name"])


def downgrade() -> None:
    op.drop_index("ix_item_field_review_status", table_name="item_field")
