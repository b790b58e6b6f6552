"""Event ids are drawn only after the inserting transaction has its id (PostgreSQL).

The live event stream delivers strictly in id order and waits at a missing id
until it is proven permanent: the id's transaction must have been in progress
in the snapshot that first saw the hole (pg_snapshot_xip). nextval() alone does
not assign a transaction id, so a transaction could hold an event id while
missing from every snapshot's in-progress list. The id default now assigns the
top-level transaction id first. SQLite needs nothing: its writers are serialized.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "gridtokenx_next_event_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_current_xact_id();
            RETURN nextval('events_id_seq');
        END
        $$
        """
    )
    op.execute(f"ALTER TABLE events ALTER COLUMN id SET DEFAULT {FUNCTION}()")
    # A per-session cache would hand out ids out of allocation order.
    op.execute("ALTER SEQUENCE events_id_seq CACHE 1")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq'::regclass)")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
