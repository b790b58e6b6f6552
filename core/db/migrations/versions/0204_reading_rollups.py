"""Rollups of meter_readings per 15 minutes and per day of reading_timestamp, per meter,
owner and wallet (core.rollups), kept by triggers in the transaction of every write
that inserts a reading or changes its status, amount or base units. Existing readings
are summed in once here.

SQLite (one writer at a time): row triggers add to both rollup tables directly.
PostgreSQL: statement triggers append the statement's net change per (bucket, meter,
owner, wallet, status) to reading_rollup_deltas, an append-only table no two writers
contend on; the scheduler folds deltas into the rollups, and readers add the deltas
not folded yet in the same statement (docs/ARCHITECTURE.md, "Rollups").

Deleting readings is not counted: the only delete is the archive, whose readings the
rollups keep summarising.

Revision ID: 0204
Revises: 0203
Create Date: 2026-12-02 18:40:00.000000
"""

# ruff: noqa: S608 -- the SQL is built from this module's own constants, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0204"
down_revision: str | None = "0203"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "review", "minting", "minted", "failed", "rejected")
TABLES = {"reading_rollups": 900, "reading_rollups_daily": 86_400}
KEY = ("bucket", "meter_id", "user_id", "wallet")
VALUES = (
    [f"n_{status}" for status in STATUSES]
    + [f"kwh_{status}" for status in STATUSES]
    + ["minted_units"]
)
WATCHED = ("reading_timestamp", "meter_id", "user_id", "wallet_address", "status", "kwh_micro",
           "token_base_units")  # fmt: skip


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(date_part('epoch', {column})) AS BIGINT)"
    return f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"


def _measures(row: str, sign: str) -> list[str]:
    """The VALUES columns of one reading `row` (NEW, OLD or a table alias), signed."""
    counts = [f"{sign}(CASE WHEN {row}.status = '{s}' THEN 1 ELSE 0 END)" for s in STATUSES]
    kwh = [f"{sign}(CASE WHEN {row}.status = '{s}' THEN {row}.kwh_micro ELSE 0 END)"
           for s in STATUSES]  # fmt: skip
    minted = f"coalesce({row}.token_base_units, 0)"
    units = f"{sign}(CASE WHEN {row}.status = 'minted' THEN {minted} ELSE 0 END)"
    return counts + kwh + [units]


def _add(table: str) -> str:
    return ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in VALUES)


def _sqlite_upsert(table: str, size: int, row: str, sign: str) -> str:
    bucket = f"{_epoch('sqlite', row + '.reading_timestamp')} / {size} * {size}"
    values = [bucket, f"{row}.meter_id", f"{row}.user_id", f"coalesce({row}.wallet_address, '')"]
    values += _measures(row, sign)
    return (
        f"INSERT INTO {table} ({', '.join(KEY + tuple(VALUES))}) VALUES ({', '.join(values)}) "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {_add(table)};"
    )


def _sqlite_triggers() -> list[str]:
    plus = " ".join(_sqlite_upsert(t, size, "NEW", "+") for t, size in TABLES.items())
    minus = " ".join(_sqlite_upsert(t, size, "OLD", "-") for t, size in TABLES.items())
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in WATCHED)
    return [
        f"CREATE TRIGGER meter_readings_rollup_insert AFTER INSERT ON meter_readings "
        f"BEGIN {plus} END",
        f"CREATE TRIGGER meter_readings_rollup_update AFTER UPDATE ON meter_readings "
        f"WHEN {changed} BEGIN {minus} {plus} END",
    ]


def _pg_delta(table: str) -> str:
    bucket = f"{_epoch('postgresql', 'reading_timestamp')} / 900 * 900"
    return (
        f"SELECT {bucket} AS bucket, meter_id, user_id, coalesce(wallet_address, '') AS wallet, "
        f"status, kwh_micro, coalesce(token_base_units, 0) AS units FROM {table}"
    )


DELTA_COLUMNS = "bucket, meter_id, user_id, wallet, status, readings, kwh_micro, base_units"
PG_FUNCTIONS = {
    "gridtokenx_rollup_inserted": (
        f"INSERT INTO reading_rollup_deltas ({DELTA_COLUMNS}) "
        f"SELECT bucket, meter_id, user_id, wallet, status, count(*), sum(kwh_micro), sum(units) "
        f"FROM ({_pg_delta('new_rows')}) AS d GROUP BY bucket, meter_id, user_id, wallet, status"
    ),
    "gridtokenx_rollup_updated": (
        f"INSERT INTO reading_rollup_deltas ({DELTA_COLUMNS}) "
        f"SELECT bucket, meter_id, user_id, wallet, status, sum(n), sum(kwh_micro), sum(units) "
        f"FROM (SELECT *, 1 AS n FROM ({_pg_delta('new_rows')}) AS a UNION ALL "
        f"SELECT bucket, meter_id, user_id, wallet, status, -kwh_micro, -units, -1 "
        f"FROM ({_pg_delta('old_rows')}) AS b) AS d "
        f"GROUP BY bucket, meter_id, user_id, wallet, status "
        f"HAVING sum(n) <> 0 OR sum(kwh_micro) <> 0 OR sum(units) <> 0"
    ),
}
PG_TRIGGERS = [
    "CREATE TRIGGER meter_readings_rollup_insert AFTER INSERT ON meter_readings "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_rollup_inserted()",
    "CREATE TRIGGER meter_readings_rollup_update AFTER UPDATE ON meter_readings "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_rollup_updated()",
]


def _backfill(dialect: str, table: str, size: int) -> str:
    bucket = f"{_epoch(dialect, 'r.reading_timestamp')} / {size} * {size}"
    measures = ", ".join(f"sum{m}" for m in _measures("r", ""))
    return (
        f"INSERT INTO {table} ({', '.join(KEY + tuple(VALUES))}) "
        f"SELECT {bucket} AS b, r.meter_id, r.user_id, coalesce(r.wallet_address, '') AS w, "
        f"{measures} FROM meter_readings AS r GROUP BY b, r.meter_id, r.user_id, w"
    )


def upgrade() -> None:
    for table in TABLES:
        op.create_table(
            table,
            sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("meter_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("wallet", sa.String(44), nullable=False),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name in VALUES),
            sa.PrimaryKeyConstraint(*KEY, name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_user_id", table, ["user_id", "bucket"])
        op.create_index(f"ix_{table}_meter_id", table, ["meter_id", "bucket"])
    op.create_table(
        "reading_rollup_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("wallet", sa.String(44), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("kwh_micro", sa.BigInteger(), nullable=False),
        sa.Column("base_units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_rollup_deltas")),
    )
    dialect = op.get_bind().dialect.name
    for table, size in TABLES.items():
        op.execute(_backfill(dialect, table, size))
    if dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body}; RETURN NULL; END $$"
            )
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in _sqlite_triggers():
            op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS meter_readings_rollup_insert ON meter_readings"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS meter_readings_rollup_insert")  # fmt: skip
    op.execute("DROP TRIGGER IF EXISTS meter_readings_rollup_update ON meter_readings"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS meter_readings_rollup_update")  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("reading_rollup_deltas")
    for table in TABLES:
        op.drop_table(table)
