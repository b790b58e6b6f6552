"""Readings minted per 15 minutes of minted_at (core.minting.minted_buckets), kept by
triggers on meter_readings in the transaction of whatever writes minted_at, so the
costs panel counts a month of minted readings from at most 2,880 rows. Existing minted
readings are counted in once here.

SQLite: row triggers. PostgreSQL: statement triggers over the transition tables, which
write only when the statement changed what is counted: an ingest INSERT of pending
readings or a claim's UPDATE to minting touch no bucket row, so only the minting
transactions (already queued on the mint_totals row) meet on the current bucket.

Revision ID: 0202
Revises: 0201
Create Date: 2026-12-02 18:30:00.000000
"""

# ruff: noqa: S608 -- the SQL is built from this module's own constants, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0202"
down_revision: str | None = "0201"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPSERT = (
    "INSERT INTO minted_buckets (bucket, readings, base_units) {rows} "
    "ON CONFLICT (bucket) DO UPDATE SET readings = minted_buckets.readings + excluded.readings, "
    "base_units = minted_buckets.base_units + excluded.base_units"
)


def _bucket(dialect: str, column: str) -> str:
    """Epoch seconds floored to 900 s, as core.views._sql.time_bucket writes it."""
    if dialect == "postgresql":
        return f"CAST(floor(date_part('epoch', {column})) AS BIGINT) / 900 * 900"
    return f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / 900 * 900"


def _sqlite_row(row: str, sign: str) -> str:
    bucket = _bucket("sqlite", f"{row}.minted_at")
    values = f"VALUES ({bucket}, {sign}1, {sign}coalesce({row}.token_base_units, 0))"
    return UPSERT.format(rows=values) + ";"


SQLITE_TRIGGERS = [
    "CREATE TRIGGER meter_readings_minted_insert AFTER INSERT ON meter_readings "
    f"WHEN NEW.minted_at IS NOT NULL BEGIN {_sqlite_row('NEW', '+')} END",
    "CREATE TRIGGER meter_readings_minted_update_old AFTER UPDATE ON meter_readings "
    "WHEN OLD.minted_at IS NOT NULL AND (NEW.minted_at IS NOT OLD.minted_at "
    "OR NEW.token_base_units IS NOT OLD.token_base_units) "
    f"BEGIN {_sqlite_row('OLD', '-')} END",
    "CREATE TRIGGER meter_readings_minted_update_new AFTER UPDATE ON meter_readings "
    "WHEN NEW.minted_at IS NOT NULL AND (NEW.minted_at IS NOT OLD.minted_at "
    "OR NEW.token_base_units IS NOT OLD.token_base_units) "
    f"BEGIN {_sqlite_row('NEW', '+')} END",
]


def _pg_rows(table: str, sign: int) -> str:
    return (
        f"SELECT {_bucket('postgresql', 'minted_at')} AS bucket, {sign} AS n, "
        f"{sign} * coalesce(token_base_units, 0) AS units FROM {table} WHERE minted_at IS NOT NULL"
    )


PG_FUNCTIONS = {
    "gridtokenx_minted_inserted": UPSERT.format(
        rows=f"SELECT bucket, sum(n), sum(units) FROM ({_pg_rows('new_rows', 1)}) AS d "
        "GROUP BY bucket ORDER BY bucket"
    ),
    "gridtokenx_minted_updated": UPSERT.format(
        rows=f"SELECT bucket, sum(n), sum(units) FROM ({_pg_rows('new_rows', 1)} UNION ALL "
        f"{_pg_rows('old_rows', -1)}) AS d GROUP BY bucket "
        "HAVING sum(n) <> 0 OR sum(units) <> 0 ORDER BY bucket"
    ),
}
PG_TRIGGERS = [
    "CREATE TRIGGER meter_readings_minted_insert AFTER INSERT ON meter_readings "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_minted_inserted()",
    "CREATE TRIGGER meter_readings_minted_update AFTER UPDATE ON meter_readings "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_minted_updated()",
]


def upgrade() -> None:
    op.create_table(
        "minted_buckets",
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("base_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_minted_buckets")),
    )
    dialect = op.get_bind().dialect.name
    bucket = _bucket(dialect, "minted_at")
    op.execute(
        f"INSERT INTO minted_buckets (bucket, readings, base_units) "
        f"SELECT {bucket} AS b, count(*), coalesce(sum(token_base_units), 0) "
        f"FROM meter_readings WHERE minted_at IS NOT NULL GROUP BY b"
    )
    if dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body}; RETURN NULL; END $$"
            )
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger in ("meter_readings_minted_insert", "meter_readings_minted_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON meter_readings")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for trigger in ("insert", "update_old", "update_new"):
            op.execute(f"DROP TRIGGER IF EXISTS meter_readings_minted_{trigger}")
    op.drop_table("minted_buckets")
