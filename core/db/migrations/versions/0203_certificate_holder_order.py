"""Certificates by holder in id order: ix_certificates_holder_id (holder_id, id).

A prosumer's registry page is their newest certificates (ORDER BY id DESC LIMIT 200).
With only (holder_id, status) SQLite read every certificate of the holder, joined
each to its bundle, meter and holder, and sorted them all before taking 200 (4.9 s
for a holder of 100,000 at 1,000,000 certificates); PostgreSQL walked the whole
primary key backwards for a holder of few old ones. In (holder_id, id) order both
read the page's rows and stop.

Revision ID: 0203
Revises: 0202
Create Date: 2026-12-02 18:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0203"
down_revision: str | None = "0202"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_certificates_holder_id", "certificates", ["holder_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_certificates_holder_id", table_name="certificates")
