"""Meters as a certificate registry knows them: technology, rated capacity, country,
grid region, location and commissioning date. Existing meters get NULLs (they
cannot issue certificates until an admin fills the required fields).

Revision ID: 0171
Revises: 0190
Create Date: 2026-12-02 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0171"
down_revision: str | None = "0190"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TECHNOLOGIES = ("solar_pv", "wind", "hydro", "battery", "biomass", "geothermal", "marine", "other")


def upgrade() -> None:
    allowed = ", ".join(repr(value) for value in TECHNOLOGIES)
    with op.batch_alter_table("meters") as batch:
        batch.add_column(sa.Column("technology", sa.String(16), nullable=True))
        batch.add_column(sa.Column("capacity_kw", sa.String(40), nullable=True))
        batch.add_column(sa.Column("country", sa.String(2), nullable=True))
        batch.add_column(sa.Column("grid_region", sa.String(32), nullable=True))
        batch.add_column(sa.Column("latitude", sa.String(40), nullable=True))
        batch.add_column(sa.Column("longitude", sa.String(40), nullable=True))
        batch.add_column(sa.Column("commissioning_date", sa.Date(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_meters_technology"), f"technology IS NULL OR technology IN ({allowed})"
        )


def downgrade() -> None:
    with op.batch_alter_table("meters") as batch:
        batch.drop_constraint(op.f("ck_meters_technology"), type_="check")
        for column in (
            "commissioning_date",
            "longitude",
            "latitude",
            "grid_region",
            "country",
            "capacity_kw",
            "technology",
        ):
            batch.drop_column(column)
