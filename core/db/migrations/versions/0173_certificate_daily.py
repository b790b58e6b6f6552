"""Certificate totals per UTC day, technology, grid region and status (issued, retired,
cancelled), written in the transactions that issue and settle certificates, so the
Certificates page's chart reads a few hundred rows instead of every certificate.
Existing certificates are summed in once here.

Revision ID: 0173
Revises: 0132
Create Date: 2026-12-02 07:45:00.000000
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0173"
down_revision: str | None = "0132"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _day(value: object) -> object:
    if isinstance(value, str):  # SQLite keeps naive UTC text
        return datetime.fromisoformat(value).date()
    return value.date() if isinstance(value, datetime) else value  # type: ignore[union-attr]


def upgrade() -> None:
    daily = op.create_table(
        "certificate_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("technology", sa.String(16), nullable=False),
        sa.Column("grid_region", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "technology", "grid_region", "status", name=op.f("pk_certificate_daily")
        ),
    )
    connection = op.get_bind()
    totals: dict[tuple, int] = defaultdict(int)
    issued = sa.text(
        "SELECT hour_start, technology, grid_region, wh FROM certificate_bundles WHERE wh > 0"
    )
    for hour, technology, region, wh in connection.execute(issued):
        totals[(_day(hour), technology, region, "issued")] += wh
    ended = sa.text(
        "SELECT c.finished_at, b.technology, b.grid_region, c.status, c.wh FROM certificates c "
        "JOIN certificate_bundles b ON b.id = c.bundle_id "
        "WHERE c.status IN ('retired', 'cancelled') AND c.finished_at IS NOT NULL"
    )
    for finished, technology, region, status, wh in connection.execute(ended):
        totals[(_day(finished), technology, region, status)] += wh
    if totals:
        op.bulk_insert(
            daily,
            [
                {"day": k[0], "technology": k[1], "grid_region": k[2], "status": k[3], "wh": v}
                for k, v in totals.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("certificate_daily")
