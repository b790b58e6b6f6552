"""Certificates by holder and status in id order: ix_certificates_holder_status becomes
(holder_id, status, id).

The registry page filtered by a holder and a status is that holder's newest
certificates of the status (ORDER BY id DESC LIMIT 200). PostgreSQL estimated the
holder's share times the status's (20,000 of 1,000,000) and walked the primary key
backwards expecting an early stop; for a holder with none of the status it read all
1,000,000 (about 1 s). With id last in this index the page's ids are the index's
newest entries for (holder, status), read index-only and stopping at the page, so
an empty filter answers at once. Its (holder_id, status) prefix serves what the
old index served.

Revision ID: 0206
Revises: 0205
Create Date: 2026-12-02 22:50:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0206"
down_revision: str | None = "0205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_certificates_holder_status", table_name="certificates")
    op.create_index(
        "ix_certificates_holder_status", "certificates", ["holder_id", "status", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_certificates_holder_status", table_name="certificates")
    op.create_index("ix_certificates_holder_status", "certificates", ["holder_id", "status"])
