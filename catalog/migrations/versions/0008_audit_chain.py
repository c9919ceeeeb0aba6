"""audit chain: sealed, hash-chained, signed blocks of audit events and the verifications' results

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "audit_block is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_block",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("rows_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("row_index", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_block")),
        sa.UniqueConstraint("first_id", name="uq_audit_block_first_id"),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_block_hash")),
    )
    op.create_table(
        "audit_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("from_block", sa.Integer(), nullable=True),
        sa.Column("to_block", sa.Integer(), nullable=True),
        sa.Column("blocks_checked", sa.Integer(), nullable=False),
        sa.Column("rows_checked", sa.Integer(), nullable=False),
        sa.Column("heads_checked", sa.Integer(), nullable=False),
        sa.Column("head_block", sa.Integer(), nullable=True),
        sa.Column("head_hash", sa.String(length=64), nullable=True),
        sa.Column("unsealed_count", sa.Integer(), nullable=False),
        sa.Column("unsealed_first_id", sa.Integer(), nullable=True),
        sa.Column("unsealed_last_id", sa.Integer(), nullable=True),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verification")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_block_no_{event.lower()} BEFORE {event} ON audit_block "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            )


def _postgresql_upgrade() -> None:
    # An audit event's id is drawn only once its transaction has a transaction id: sealing's watermark (the
    # sequence's last value, then the transactions running) then knows every transaction that may hold a lower id.
    sequence = op.get_bind().scalar(sa.text("SELECT pg_get_serial_sequence('audit_event', 'id')"))
    # A CASE evaluates its condition first: the transaction id is assigned, then the audit id drawn. As plain SQL the
    # function is inlined into the insert (as cheap as nextval alone; a PL/pgSQL body cost 45 % more per row).
    op.execute(
        f"""CREATE FUNCTION audit_event_next_id() RETURNS integer LANGUAGE sql VOLATILE AS $$
        SELECT CASE WHEN pg_current_xact_id() IS NOT NULL THEN CAST(nextval('{sequence}') AS integer) END $$"""
    )
    op.execute("ALTER TABLE audit_event ALTER COLUMN id SET DEFAULT audit_event_next_id()")
    op.execute(
        f"""CREATE FUNCTION audit_block_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"""
    )
    op.execute(
        "CREATE TRIGGER audit_block_append_only BEFORE UPDATE OR DELETE ON audit_block "
        "FOR EACH ROW EXECUTE FUNCTION audit_block_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        sequence = op.get_bind().scalar(sa.text("SELECT pg_get_serial_sequence('audit_event', 'id')"))
        op.execute(f"ALTER TABLE audit_event ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)")
        op.execute("DROP FUNCTION audit_event_next_id()")
        op.execute("DROP TRIGGER audit_block_append_only ON audit_block")
        op.execute("DROP FUNCTION audit_block_append_only()")
    op.drop_table("audit_verification")
    op.drop_table("audit_block")
