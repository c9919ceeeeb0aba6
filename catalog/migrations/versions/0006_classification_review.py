"""classification review, proposals, notifications and re-approval

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_notification_department_id_department"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_department_id_created_at", ["department_id", "created_at"], unique=False)

    op.create_table(
        "classification_proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("field_name", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("proposed_level", sa.Integer(), nullable=False),
        sa.Column("proposed_semantic_type", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalog_item.id"],
            name=op.f("fk_classification_proposal_item_id_catalog_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classification_proposal")),
    )
    with op.batch_alter_table("classification_proposal", schema=None) as batch_op:
        batch_op.create_index("ix_classification_proposal_item_id_field_name", ["item_id", "field_name"], unique=False)
        batch_op.create_index("ix_classification_proposal_status_created_at", ["status", "created_at"], unique=False)

    op.create_table(
        "field_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("field_name", sa.String(length=128), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_level", sa.Integer(), nullable=False),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column("from_semantic_type", sa.String(length=32), nullable=False),
        sa.Column("to_semantic_type", sa.String(length=32), nullable=False),
        sa.Column("suggested_level", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["catalog_item.id"], name=op.f("fk_field_review_item_id_catalog_item"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_review")),
    )
    with op.batch_alter_table("field_review", schema=None) as batch_op:
        batch_op.create_index("ix_field_review_decided_by_decided_at", ["decided_by", "decided_at"], unique=False)
        batch_op.create_index("ix_field_review_item_id_field_name", ["item_id", "field_name"], unique=False)

    with op.batch_alter_table("item_field", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_status", sa.String(length=16), server_default="pending", nullable=False))
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("masked_fields", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("reapproval_status", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("reapproval_level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reapproval_requested_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("reapproval_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("reapproval_requested_at")
        batch_op.drop_column("reapproval_requested_by")
        batch_op.drop_column("reapproval_level")
        batch_op.drop_column("reapproval_status")
        batch_op.drop_column("masked_fields")

    with op.batch_alter_table("item_field", schema=None) as batch_op:
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("review_status")

    with op.batch_alter_table("field_review", schema=None) as batch_op:
        batch_op.drop_index("ix_field_review_item_id_field_name")
        batch_op.drop_index("ix_field_review_decided_by_decided_at")

    op.drop_table("field_review")
    with op.batch_alter_table("classification_proposal", schema=None) as batch_op:
        batch_op.drop_index("ix_classification_proposal_status_created_at")
        batch_op.drop_index("ix_classification_proposal_item_id_field_name")

    op.drop_table("classification_proposal")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_department_id_created_at")

    op.drop_table("notification")
