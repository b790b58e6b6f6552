"""Monthly range partitions of meter_readings and events (PostgreSQL; SQLite keeps one table).

Each table is partitioned on its timestamp (`reading_timestamp`, `created_at`) into
`<table>_yYYYYmMM` for [first of month, first of next month) UTC, plus
`<table>_default` for any row outside them (a back-filled reading from before the
first partition, a late one for a month already archived). The scheduler creates
the current month and the next few ahead (`ensure_ahead`), so rows land in a month
partition from the start; the archive drops a closed month's partition whole.

Creating a month is done under the `partitions` advisory lock (core.db.locks), and
re-checked inside it: two processes starting together create each partition once.
Rows of that month already in the default partition are moved into the new table
before it is attached, because attaching a range the default partition holds
rows of fails.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, text

from core.db.locks import exclusive

# table -> its partition key
PARTITIONED: dict[str, str] = {"meter_readings": "reading_timestamp", "events": "created_at"}
MONTHS_AHEAD = 3  # the current month and this many after it exist at all times
LOCK = "partitions"


def month_of(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def parse_month(value: str) -> date:
    """`YYYY-MM` -> the first of that month; ValueError naming the form otherwise."""
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise ValueError(f"{value!r} is not a month: write it as YYYY-MM, e.g. 2026-11") from None
    return date(parsed.year, parsed.month, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = next_month(month)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def is_partitioned(connection: Connection, table: str) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    found = connection.execute(
        text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"),
        {"t": table},
    ).first()
    return found is not None


def months(connection: Connection, table: str) -> list[date]:
    """The months that have a partition of `table`, oldest first."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).scalars()
    prefix = f"{table}_y"
    found = []
    for name in rows:
        if name.startswith(prefix):
            found.append(date(int(name[len(prefix) : len(prefix) + 4]), int(name[-2:]), 1))
    return sorted(found)


def create_month(connection: Connection, table: str, month: date) -> bool:
    """Create `month`'s partition of `table` if missing (caller holds LOCK); True if made."""
    name = partition_name(table, month)
    exists = connection.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar()
    if exists is not None:
        return False
    key = PARTITIONED[table]
    start, end = bounds(month)
    connection.execute(
        text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    default = f"{table}_default"
    if connection.execute(text("SELECT to_regclass(:n)"), {"n": default}).scalar() is not None:
        move = (  # names from PARTITIONED and a date, never from input
            f"WITH moved AS (DELETE FROM {default} WHERE {key} >= :start AND {key} < :end "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
        connection.execute(text(move), {"start": start, "end": end})
    connection.execute(
        text(
            f"ALTER TABLE {table} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    return True


def ensure_months(engine: Engine, wanted: list[date]) -> list[str]:
    """Every partitioned table gets a partition for each month wanted; the names created."""
    if engine.dialect.name != "postgresql":
        return []
    created: list[str] = []
    with exclusive(engine, LOCK), engine.begin() as connection:
        for table in PARTITIONED:
            if not is_partitioned(connection, table):
                continue
            for month in wanted:
                if create_month(connection, table, month):
                    created.append(partition_name(table, month))
    return created


def ensure_ahead(engine: Engine, now: datetime, ahead: int = MONTHS_AHEAD) -> list[str]:
    """The current month and `ahead` months after it (the scheduler's partitions job)."""
    wanted = [month_of(now)]
    for _ in range(ahead):
        wanted.append(next_month(wanted[-1]))
    return ensure_months(engine, wanted)
