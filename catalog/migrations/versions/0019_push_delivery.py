"""push delivery: a subscription's delivery targets (webhook, the consumer's PostgreSQL table, a file drop), a record
per target and version sent, and the consumer's pause of its subscription's deliveries

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.add_column(sa.Column("deliveries_paused", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "delivery_target",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subscription_id", sa.Integer(), sa.ForeignKey("subscription.id", ondelete="CASCADE"),
                  nullable=False),  # fmt: skip
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("department.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("db_schema", sa.String(length=63), nullable=True),
        sa.Column("db_table", sa.String(length=63), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("file_format", sa.String(length=16), nullable=True),
        sa.Column("secret_variable", sa.String(length=128), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("department_id", "name", name="uq_delivery_target_department_id_name"),
        sa.UniqueConstraint("secret_variable", name="uq_delivery_target_secret_variable"),
    )
    op.create_index("ix_delivery_target_subscription_id", "delivery_target", ["subscription_id"])
    op.create_table(
        "push_delivery",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("delivery_target.id", ondelete="SET NULL"), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=False),
        sa.Column("target_name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("first_tried_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tried_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("target_id", "version", name="uq_push_delivery_target_id_version"),
    )
    op.create_index("ix_push_delivery_status_id", "push_delivery", ["status", "id"])
    op.create_index("ix_push_delivery_item_code_version", "push_delivery", ["item_code", "version"])


def downgrade() -> None:
    op.drop_table("push_delivery")
    op.drop_table("delivery_target")
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.drop_column("deliveries_paused")
