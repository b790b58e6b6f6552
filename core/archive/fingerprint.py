"""A PostgreSQL-side fingerprint of a month's rows, so removal need not re-read them in Python.

Removing a partition must prove that no row changed since the archive was written.
Comparing every row with its line in the file costs Python per row (fetch, encode,
compare) while the partition is locked against writes; at fleet scale that is hours of
a lock that also holds up every UPDATE of meter_readings that is not pruned to one
partition. Instead the archive records, from the same snapshot its files were written
from, the count of the month's rows and the sum of a 60-bit slice of each row's md5
(order-free, so one scan with no sort and constant memory); removal recomputes both
under the lock, in the database, and removes only when they are equal. A changed,
added or removed row changes them (a collision needs two changes that cancel in 60
bits). Session settings that shape a row's text (time zone, date style, float digits)
are fixed for the statement's transaction, so the text is the same at both ends.

Only the partition path uses it; SQLite (and a month in PostgreSQL's default
partition) compares row by row, as before (core.archive.removal).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from core.db.models import ReadingStatus
from core.db.partitions import PARTITIONED, bounds

_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
)


def month_fingerprint(connection: Connection, table: str, month: date) -> str:
    """`{rows}:{sum}` of the month's rows of `table`, in the connection's transaction."""
    for setting in _SETTINGS:
        connection.execute(text(setting))
    key = PARTITIONED[table]
    start, end = bounds(month)
    statement = (
        "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 15))::bit(60)::bigint), 0)"  # noqa: S608 -- constants
        f" FROM {table} t WHERE t.{key} >= :start AND t.{key} < :end"
    )
    rows, total = connection.execute(
        text(statement),
        {"start": start, "end": end},
    ).one()
    return f"{rows}:{total}"


def minted_totals(connection: Connection, month: date) -> tuple[int, int]:
    """(minted readings, their base units) of the month, for mint_totals.archived_*."""
    start, end = bounds(month)
    rows, units = connection.execute(
        text(
            "SELECT count(*), coalesce(sum(token_base_units), 0) FROM meter_readings"
            " WHERE status = :minted AND reading_timestamp >= :start AND reading_timestamp < :end"
        ),
        {"minted": ReadingStatus.MINTED.value, "start": start, "end": end},
    ).one()
    return int(rows), int(units)
