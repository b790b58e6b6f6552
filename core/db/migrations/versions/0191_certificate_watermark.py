"""Issuance watermark: the one-row certificate_watermark says from which moment issuance
must look again (readings minted, or hours closed, since then), so a run reads the few
readings newly closed-and-minted instead of every minted reading. NULL: from the start.

Revision ID: 0191
Revises: 0112
Create Date: 2026-12-02 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.types import UtcDateTime

revision: str = "0191"
down_revision: str | None = "0112"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    watermark = op.create_table(
        "certificate_watermark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("since", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_watermark")),
    )
    op.bulk_insert(watermark, [{"id": 1, "since": None}])


def downgrade() -> None:
    op.drop_table("certificate_watermark")
