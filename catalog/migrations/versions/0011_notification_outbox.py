"""notification outbox: channels, recipients and deliveries with retries

Users get an e-mail address, notifications an audience (a department's people, its stewards, data officers, ops;
the last two need no department), subscriptions an opt-in for new versions and the mark of their expiry notice;
departments get outward channels (webhooks), and every sending is a row of the outbox.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_new_versions", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("expiry_notice_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.String(length=16), server_default="department", nullable=False))
        batch_op.alter_column("department_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "notification_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_variable", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_notification_channel_department_id_department"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channel")),
        sa.UniqueConstraint("department_id", "name", name="uq_notification_channel_department_id_name"),
        sa.UniqueConstraint("secret_variable", name="uq_notification_channel_secret_variable"),
    )
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_notification_delivery_notification_id_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_delivery")),
    )
    with op.batch_alter_table("notification_delivery", schema=None) as batch_op:
        batch_op.create_index("ix_notification_delivery_status_next_attempt_at", ["status", "next_attempt_at"])
        batch_op.create_index("ix_notification_delivery_notification_id", ["notification_id"])


def downgrade() -> None:
    op.drop_table("notification_delivery")
    op.drop_table("notification_channel")
    # Notices for data officers or ops alone have no department: the older schema has no place for them.
    op.execute(sa.text("DELETE FROM notification WHERE department_id IS NULL OR audience <> 'department'"))
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.alter_column("department_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("audience")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("expiry_notice_at")
        batch_op.drop_column("notify_new_versions")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("email")
