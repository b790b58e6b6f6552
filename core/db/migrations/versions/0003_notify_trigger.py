"""Event notifications from a statement trigger (PostgreSQL).

The NOTIFY that wakes listeners used to be one more statement the application
sent before every commit. A statement-level trigger on `events` sends it inside
the INSERT instead: one round trip less per ingest request, and no way to write
an event without its notification. PostgreSQL still delivers it only at commit.
SQLite needs nothing: its readers poll.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "gridtokenx_events"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION gridtokenx_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify(
                '{CHANNEL}',
                json_build_object(
                    'max_id', (SELECT max(id) FROM new_events),
                    'types', (SELECT json_agg(DISTINCT type) FROM new_events)
                )::text
            );
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER events_notify AFTER INSERT ON events
        REFERENCING NEW TABLE AS new_events
        FOR EACH STATEMENT EXECUTE FUNCTION gridtokenx_notify_events()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER events_notify ON events")
    op.execute("DROP FUNCTION gridtokenx_notify_events()")
