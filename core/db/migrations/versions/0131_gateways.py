"""Gateways: head-end API keys that submit for the meters assigned to them.

Revision ID: 0131
Revises: 0171
Create Date: 2026-12-02 06:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.types import UtcDateTime

revision: str = "0131"
down_revision: str | None = "0171"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateways",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f("ck_gateways_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateways")),
        sa.UniqueConstraint("name", name=op.f("uq_gateways_name")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_gateways_api_key_hash")),
    )
    op.create_table(
        "gateway_meters",
        sa.Column("gateway_id", sa.Integer(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["gateway_id"], ["gateways.id"], name=op.f("fk_gateway_meters_gateway_id_gateways")
        ),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_gateway_meters_meter_id_meters")
        ),
        sa.PrimaryKeyConstraint("gateway_id", "meter_id", name=op.f("pk_gateway_meters")),
    )
    op.create_index("ix_gateway_meters_meter_id", "gateway_meters", ["meter_id"])


def downgrade() -> None:
    op.drop_index("ix_gateway_meters_meter_id", table_name="gateway_meters")
    op.drop_table("gateway_meters")
    op.drop_table("gateways")
