"""Running totals of what was minted (core.minting.totals), kept in the transaction
that marks readings minted, so reconciliation reads one row instead of summing every
minted reading. Existing minted readings are summed in once here.

Revision ID: 0200
Revises: 0191
Create Date: 2026-12-02 13:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | None = "0191"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mint_totals",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("base_units", sa.BigInteger(), nullable=False),
        sa.Column("archived_readings", sa.BigInteger(), nullable=False),
        sa.Column("archived_base_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mint_totals")),
    )
    op.execute(
        "INSERT INTO mint_totals (name, readings, base_units, archived_readings, "
        "archived_base_units) SELECT 'grx', count(*), coalesce(sum(token_base_units), 0), 0, 0 "
        "FROM meter_readings WHERE status = 'minted'"
    )


def downgrade() -> None:
    op.drop_table("mint_totals")
