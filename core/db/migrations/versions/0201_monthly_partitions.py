"""meter_readings and events partitioned by month on their timestamp (PostgreSQL only).

Each table is rebuilt as a declarative RANGE-partitioned table (core.db.partitions):
one partition per month from the oldest row to three months ahead, plus a DEFAULT
partition, and the rows copied over. A partitioned table's primary key and unique
constraints must contain the partition key, so the primary keys become (id,
reading_timestamp) and (id, created_at); ids still come from the same sequences and
stay unique. (meter_id, reading_timestamp) already contains it.

No unique constraint on meter_readings(id) alone can exist any more, so the two
foreign keys that pointed at it (interval_amounts.reading_id and
certificate_readings.reading_id) are dropped: both are written in the transaction
that reads the reading, and after an archive they name readings kept in the archive
file (docs/ARCHITECTURE.md). SQLite is unchanged: one table each, foreign keys kept.

Revision ID: 0201
Revises: 0200
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from alembic import op

revision: str = "0201"
down_revision: str | None = "0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD = 3
TABLES = {
    "meter_readings": {
        "key": "reading_timestamp",
        "unique": ["ALTER TABLE meter_readings ADD CONSTRAINT "
                   "uq_meter_readings_meter_id_reading_timestamp UNIQUE (meter_id, reading_timestamp)"],
        "indexes": [
            "CREATE INDEX ix_meter_readings_claim ON meter_readings (id, next_attempt_at) "
            "WHERE status = 'pending'",
            "CREATE INDEX ix_meter_readings_mint_batch_id ON meter_readings (mint_batch_id)",
            "CREATE INDEX ix_meter_readings_minted_at ON meter_readings (minted_at)",
            "CREATE INDEX ix_meter_readings_open ON meter_readings (status, id) "
            "WHERE status <> 'minted'",
            "CREATE INDEX ix_meter_readings_reading_timestamp ON meter_readings (reading_timestamp)",
            "CREATE INDEX ix_meter_readings_submitted_at ON meter_readings (submitted_at)",
            "CREATE INDEX ix_meter_readings_user_time ON meter_readings (user_id, reading_timestamp)",
        ],
        "foreign_keys": [
            ("meter_id", "meters"),
            ("mint_batch_id", "mint_batches"),
            ("mint_requested_by", "users"),
            ("reviewed_by", "users"),
            ("user_id", "users"),
        ],
    },
    "events": {
        "key": "created_at",
        "unique": [],
        "indexes": [
            "CREATE INDEX ix_events_created_at ON events (created_at)",
            "CREATE INDEX ix_events_type_id ON events (type, id)",
            "CREATE INDEX ix_events_user_id_id ON events (user_id, id)",
        ],
        "foreign_keys": [("user_id", "users")],
    },
}  # fmt: skip
# Foreign keys into meter_readings(id): possible only while it is not partitioned.
REFERENCING = [("interval_amounts", "reading_id"), ("certificate_readings", "reading_id")]
NOTIFY_TRIGGER = (
    "CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS new_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION gridtokenx_notify_events()"
)


def _month(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _iso(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Rebuild `table` partitioned (or back to one table), keeping its rows and names."""
    spec = TABLES[table]
    key = spec["key"]
    connection = op.get_bind()
    old = f"{table}_rebuilt_from"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    indexes = connection.exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s", (old,)
    ).scalars()
    for index in list(indexes):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_rebuilt")
    clause = f" PARTITION BY RANGE ({key})" if partitioned else ""
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){clause}"
    )
    primary = f"id, {key}" if partitioned else "id"
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({primary})")
    for statement in spec["unique"] + spec["indexes"]:
        op.execute(statement)
    for column, target in spec["foreign_keys"]:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_{column}_{target} "
            f"FOREIGN KEY ({column}) REFERENCES {target} (id)"
        )
    if partitioned:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        oldest = connection.exec_driver_sql(f"SELECT min({key}) FROM {old}").scalar()  # noqa: S608
        now = _month(datetime.now(UTC))
        month = min(_month(oldest), now) if oldest is not None else now
        last = now
        for _ in range(AHEAD):
            last = _next(last)
        while month <= last:
            name = f"{table}_y{month.year:04d}m{month.month:02d}"
            op.execute(
                f"CREATE TABLE {name} PARTITION OF {table} "
                f"FOR VALUES FROM ('{_iso(month)}') TO ('{_iso(_next(month))}')"
            )
            month = _next(month)
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")  # noqa: S608
    op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
    if table == "meter_readings":
        for referencing, column in REFERENCING:
            op.execute(
                f"ALTER TABLE {referencing} DROP CONSTRAINT IF EXISTS "
                f"fk_{referencing}_{column}_meter_readings"
            )
    op.execute(f"DROP TABLE {old}")
    if table == "events":
        op.execute(NOTIFY_TRIGGER)
    if table == "meter_readings" and not partitioned:
        for referencing, column in REFERENCING:
            op.execute(
                f"ALTER TABLE {referencing} ADD CONSTRAINT "
                f"fk_{referencing}_{column}_meter_readings "
                f"FOREIGN KEY ({column}) REFERENCES meter_readings (id)"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, partitioned=False)
