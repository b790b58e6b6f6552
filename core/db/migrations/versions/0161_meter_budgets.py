"""Each meter's reading budget as a row, shared by every api process on PostgreSQL.

core/readings/shared_budget.py spends from it with one INSERT ... ON CONFLICT
DO UPDATE; integers only (micro-tokens, microseconds on the database clock).
On SQLite the table exists but stays empty: the budget lives in process memory.

Revision ID: 0161
Revises: 0173
Create Date: 2026-12-02 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0161"
down_revision: str | None = "0173"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meter_budgets",
        sa.Column(
            "meter_id",
            sa.Integer(),
            sa.ForeignKey("meters.id", ondelete="CASCADE", name="fk_meter_budgets_meter_id_meters"),
        ),
        sa.Column("micro_tokens", sa.BigInteger(), nullable=False),
        sa.Column("refilled_us", sa.BigInteger(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", name="pk_meter_budgets"),
    )


def downgrade() -> None:
    op.drop_table("meter_budgets")
