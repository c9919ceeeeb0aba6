"""incremental load: an item's declared load policy (full, or incremental exports of changed keys), and the
generation table whose rows a version's view shows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_item") as batch_op:
        batch_op.add_column(sa.Column("load", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("item_version") as batch_op:
        batch_op.add_column(sa.Column("generation", sa.String(length=63), nullable=True))


def downgrade() -> None:
    """Each version that is a view of a generation becomes a table of its own again (its rows copied), as the older
    schema has every version; then the generation tables go."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT table_name, generation FROM item_version WHERE generation IS NOT NULL")).all()
    for table_name, _ in rows:
        copy = f"{table_name}_copy"
        bind.exec_driver_sql(f'CREATE TABLE "{copy}" AS SELECT * FROM "{table_name}"')
        bind.exec_driver_sql(f'DROP VIEW "{table_name}"')
        bind.exec_driver_sql(f'ALTER TABLE "{copy}" RENAME TO "{table_name}"')
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql(f'ALTER TABLE "{table_name}" ADD PRIMARY KEY ("_row")')
    for generation in sorted({generation for _, generation in rows}):
        bind.exec_driver_sql(f'DROP TABLE IF EXISTS "{generation}"')
    # Not in batch mode: SQLite (3.35+) drops a column in place, where copying these tables (which others reference)
    # would break their foreign keys.
    op.drop_column("item_version", "generation")
    op.drop_column("catalog_item", "load")
