"""The fleet worst first, from an index: ix_meters_worst_first on
((status = 'suspended'), last_seen_at NULLS FIRST, serial).

Fleet health lists meters worst first: never seen, then the longest unseen (silent,
then late, then reporting: a meter's state falls with its last_seen_at), suspended
last, serial to break ties (core.views.fleet `worst_first`). Without an index each
page and the Overview's worst five sorted all 100,000 meters (about 70 ms each on the
loaded 2-core machine, several per run); with it a page is an index range (page 100:
9 ms) and the worst five its first entries. On SQLite NULLs sort first in an
ascending index, which NULLS FIRST cannot be written in.

Revision ID: 0207
Revises: 0206
Create Date: 2026-12-03 08:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0207"
down_revision: str | None = "0206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    nulls = " NULLS FIRST" if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(
        "CREATE INDEX ix_meters_worst_first ON meters "
        f"((status = 'suspended'), last_seen_at{nulls}, serial)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_meters_worst_first")
