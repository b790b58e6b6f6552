"""Fleet-wide flow of readings per 15 minutes (core.rollups.flow): how many readings
were stamped, received and minted in each bucket, with their micro-kWh, and the
acceptance -> minted latency histogram per 15 minutes of minted_at. The Minting page's
queue and latency, the ingest rate, the cockpit bars and the live chart's total read
these instead of rows: one row per bucket and axis, whatever the fleet's size.

`reading_flow` (axis, bucket): axis 'reading' buckets reading_timestamp, 'submitted'
submitted_at, 'minted' minted_at (readings with one). Every status is counted;
`rejected` counts those rejected, which the queue leaves out.
`minted_latency` (bucket, latency_secs): readings minted in the bucket of minted_at by
whole seconds from acceptance (epoch(minted_at) - epoch(submitted_at)).

SQLite: row triggers add to both directly. PostgreSQL: the flow's rows are the hottest
there are (every ingest statement meets on the current bucket), so its statement
triggers append net changes to `reading_flow_deltas`, folded in by the scheduler's
fold-rollups job with the other rollups; only minting writes `minted_latency`, in place,
as it writes `minted_buckets` (already queued on the mint_totals row). Existing rows are
summed in once here; deleting (the archive) is not counted.

Revision ID: 0205
Revises: 0204
Create Date: 2026-12-02 21:40:00.000000
"""

# ruff: noqa: S608 -- the SQL is built from this module's own constants, never from input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0205"
down_revision: str | None = "0204"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AXES = {"reading": "reading_timestamp", "submitted": "submitted_at", "minted": "minted_at"}
FLOW_UPSERT = (
    "INSERT INTO reading_flow (axis, bucket, readings, rejected, kwh_micro) {rows} "
    "ON CONFLICT (axis, bucket) DO UPDATE SET "
    "readings = reading_flow.readings + excluded.readings, "
    "rejected = reading_flow.rejected + excluded.rejected, "
    "kwh_micro = reading_flow.kwh_micro + excluded.kwh_micro"
)
LATENCY_UPSERT = (
    "INSERT INTO minted_latency (bucket, latency_secs, readings) {rows} "
    "ON CONFLICT (bucket, latency_secs) DO UPDATE SET "
    "readings = minted_latency.readings + excluded.readings"
)


def _epoch(dialect: str, column: str) -> str:
    """Whole epoch seconds, as core.views._sql.epoch_seconds writes them."""
    if dialect == "postgresql":
        return f"CAST(floor(date_part('epoch', {column})) AS BIGINT)"
    return f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"


def _bucket(dialect: str, column: str) -> str:
    return f"{_epoch(dialect, column)} / 900 * 900"


def _latency(dialect: str, row: str) -> str:
    return f"{_epoch(dialect, row + 'minted_at')} - {_epoch(dialect, row + 'submitted_at')}"


# --- SQLite: row triggers ----------------------------------------------------------------


def _sqlite_flow(row: str, sign: str) -> list[str]:
    statements = []
    for axis, column in AXES.items():
        values = (
            f"SELECT '{axis}', {_bucket('sqlite', f'{row}.{column}')}, {sign}1, "
            f"{sign}(CASE WHEN {row}.status = 'rejected' THEN 1 ELSE 0 END), "
            f"{sign}{row}.kwh_micro WHERE {row}.{column} IS NOT NULL"
        )
        statements.append(FLOW_UPSERT.format(rows=values) + ";")
    latency = (
        f"SELECT {_bucket('sqlite', f'{row}.minted_at')}, {_latency('sqlite', row + '.')}, "
        f"{sign}1 WHERE {row}.minted_at IS NOT NULL"
    )
    statements.append(LATENCY_UPSERT.format(rows=latency) + ";")
    return statements


SQLITE_CHANGED = " OR ".join(
    [f"OLD.{column} IS NOT NEW.{column}" for column in (*AXES.values(), "kwh_micro")]
    + ["(OLD.status = 'rejected') IS NOT (NEW.status = 'rejected')"]
)
SQLITE_TRIGGERS = [
    "CREATE TRIGGER meter_readings_flow_insert AFTER INSERT ON meter_readings "
    f"BEGIN {' '.join(_sqlite_flow('NEW', '+'))} END",
    "CREATE TRIGGER meter_readings_flow_update AFTER UPDATE ON meter_readings "
    f"WHEN {SQLITE_CHANGED} "
    f"BEGIN {' '.join(_sqlite_flow('OLD', '-') + _sqlite_flow('NEW', '+'))} END",
]

# --- PostgreSQL: statement triggers over the transition tables -----------------------------


def _pg_flow_rows(table: str, sign: int) -> str:
    parts = [
        f"SELECT '{axis}' AS axis, {_bucket('postgresql', column)} AS bucket, {sign} AS n, "
        f"{sign} * (CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) AS r, "
        f"{sign} * kwh_micro AS k FROM {table} WHERE {column} IS NOT NULL"
        for axis, column in AXES.items()
    ]
    return " UNION ALL ".join(parts)


def _pg_latency_rows(table: str, sign: int) -> str:
    return (
        f"SELECT {_bucket('postgresql', 'minted_at')} AS bucket, "
        f"{_latency('postgresql', '')} AS latency, {sign} AS n "
        f"FROM {table} WHERE minted_at IS NOT NULL"
    )


def _pg_flow(source: str) -> str:
    return (
        "INSERT INTO reading_flow_deltas (axis, bucket, readings, rejected, kwh_micro) "
        f"SELECT axis, bucket, sum(n), sum(r), sum(k) FROM ({source}) AS d GROUP BY axis, bucket "
        "HAVING sum(n) <> 0 OR sum(r) <> 0 OR sum(k) <> 0"
    )


def _pg_latency(source: str) -> str:
    return LATENCY_UPSERT.format(
        rows=f"SELECT bucket, latency, sum(n) FROM ({source}) AS d GROUP BY bucket, latency "
        "HAVING sum(n) <> 0 ORDER BY bucket, latency"
    )


PG_FUNCTIONS = {
    "gridtokenx_flow_inserted": [
        _pg_flow(_pg_flow_rows("new_rows", 1)),
        _pg_latency(_pg_latency_rows("new_rows", 1)),
    ],
    "gridtokenx_flow_updated": [
        _pg_flow(f"{_pg_flow_rows('new_rows', 1)} UNION ALL {_pg_flow_rows('old_rows', -1)}"),
        _pg_latency(
            f"{_pg_latency_rows('new_rows', 1)} UNION ALL {_pg_latency_rows('old_rows', -1)}"
        ),
    ],
}
PG_TRIGGERS = [
    "CREATE TRIGGER meter_readings_flow_insert AFTER INSERT ON meter_readings "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_flow_inserted()",
    "CREATE TRIGGER meter_readings_flow_update AFTER UPDATE ON meter_readings "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION gridtokenx_flow_updated()",
]


def _backfill(dialect: str) -> list[str]:
    flow = [
        f"INSERT INTO reading_flow (axis, bucket, readings, rejected, kwh_micro) "
        f"SELECT '{axis}', {_bucket(dialect, column)} AS b, count(*), "
        f"sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), sum(kwh_micro) "
        f"FROM meter_readings WHERE {column} IS NOT NULL GROUP BY b"
        for axis, column in AXES.items()
    ]
    latency = (
        f"INSERT INTO minted_latency (bucket, latency_secs, readings) "
        f"SELECT {_bucket(dialect, 'minted_at')} AS b, {_latency(dialect, '')} AS l, count(*) "
        f"FROM meter_readings WHERE minted_at IS NOT NULL GROUP BY b, l"
    )
    return [*flow, latency]


def upgrade() -> None:
    def counts() -> list[sa.Column]:
        return [sa.Column(name, sa.BigInteger(), nullable=False)
                for name in ("readings", "rejected", "kwh_micro")]  # fmt: skip

    op.create_table(
        "reading_flow",
        sa.Column("axis", sa.String(10), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        *counts(),
        sa.PrimaryKeyConstraint("axis", "bucket", name=op.f("pk_reading_flow")),
    )
    op.create_table(
        "reading_flow_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("axis", sa.String(10), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        *counts(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_flow_deltas")),
    )
    op.create_table(
        "minted_latency",
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("latency_secs", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "latency_secs", name=op.f("pk_minted_latency")),
    )
    dialect = op.get_bind().dialect.name
    for statement in _backfill(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {'; '.join(body)}; RETURN NULL; END $$"
            )
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for trigger in ("meter_readings_flow_insert", "meter_readings_flow_update"):
        op.execute(
            f"DROP TRIGGER IF EXISTS {trigger}" + (" ON meter_readings" if postgresql else "")
        )
    if postgresql:
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    for table in ("minted_latency", "reading_flow_deltas", "reading_flow"):
        op.drop_table(table)
