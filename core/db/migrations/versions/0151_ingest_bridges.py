"""The ingest bridges' heartbeat rows (the MQTT bridge): what /health and the dashboard show.

Revision ID: 0151
Revises: 0172
Create Date: 2026-12-02 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0151"
down_revision: str | None = "0172"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_bridges",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(255), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("messages_per_sec", sa.String(40), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ingest_bridges")),
    )


def downgrade() -> None:
    op.drop_table("ingest_bridges")
