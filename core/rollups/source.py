"""What readers select from: the rollup rows plus the deltas not folded in yet.

On PostgreSQL the triggers append each statement's change to `reading_rollup_deltas`
and the scheduler folds them into the rollup tables (core.rollups.fold). A reader adds
the two in one statement, so one snapshot: a fold commits its deletes and its adds
together, and a reader sees the deltas either before or after, never both or neither.
SQLite's triggers write the rollups directly, so its delta table stays empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Subquery,
    Table,
    case,
    func,
    literal_column,
    select,
    union_all,
)

from core.db.models import (
    READING_ROLLUPS,
    READING_ROLLUPS_DAILY,
    ROLLUP_MEASURES,
    ReadingRollupDelta,
    ReadingStatus,
)


@dataclass(frozen=True)
class Level:
    table: Table
    bucket_secs: int


FIFTEEN_MINUTES = Level(READING_ROLLUPS, 900)
DAY = Level(READING_ROLLUPS_DAILY, 86_400)
ACCEPTED = tuple(status for status in ReadingStatus if status != ReadingStatus.REJECTED)
EVERY = tuple(ReadingStatus)


def level_for(bucket_secs: int) -> Level:
    """The coarsest level whose buckets tile buckets of `bucket_secs` exactly."""
    if bucket_secs % DAY.bucket_secs == 0:
        return DAY
    if bucket_secs % FIFTEEN_MINUTES.bucket_secs == 0:
        return FIFTEEN_MINUTES
    raise ValueError(f"{bucket_secs} s is not a whole number of 15-minute buckets")


def regroup(rows: Subquery, bucket_secs: int) -> ColumnElement[int]:
    """The rollup bucket regrouped into buckets of `bucket_secs` (epoch seconds)."""
    size = literal_column(str(int(bucket_secs)), BigInteger())
    return rows.c.bucket.op("/", return_type=BigInteger())(size).op("*", return_type=BigInteger())(
        size
    )


def _deltas(level: Level) -> Any:
    deltas = ReadingRollupDelta.__table__.c
    bucket: ColumnElement[int] = deltas.bucket
    if level.bucket_secs != FIFTEEN_MINUTES.bucket_secs:
        size = literal_column(str(level.bucket_secs), BigInteger())
        bucket = deltas.bucket.op("/", return_type=BigInteger())(size).op(
            "*", return_type=BigInteger()
        )(size)
    zero = literal_column("0", BigInteger())
    wide = [
        case((deltas.status == status.value, deltas.readings), else_=zero).label(f"n_{status}")
        for status in ReadingStatus
    ]
    wide += [
        case((deltas.status == status.value, deltas.kwh_micro), else_=zero).label(f"kwh_{status}")
        for status in ReadingStatus
    ]
    minted = deltas.status == ReadingStatus.MINTED.value
    wide.append(case((minted, deltas.base_units), else_=zero).label("minted_units"))
    return select(bucket.label("bucket"), deltas.meter_id, deltas.user_id, deltas.wallet, *wide)


def rollup_rows(level: Level) -> Subquery:
    """Rows of (bucket, meter_id, user_id, wallet, n_<status>, kwh_<status>, minted_units):
    several rows may share a key, so readers always sum."""
    table = level.table.c
    folded = select(
        table.bucket,
        table.meter_id,
        table.user_id,
        table.wallet,
        *(table[name] for name in ROLLUP_MEASURES),
    )
    return union_all(folded, _deltas(level)).subquery("rollup")


def measure(rows: Subquery, prefix: str, statuses: tuple[ReadingStatus, ...]) -> ColumnElement[int]:
    """sum() of `prefix`_<status> ("n" or "kwh") over `statuses`, 0 when no row matches."""
    total: ColumnElement[int] = rows.c[f"{prefix}_{statuses[0]}"]
    for status in statuses[1:]:
        total = total + rows.c[f"{prefix}_{status}"]
    return func.coalesce(func.sum(total), 0)


def accepted(rows: Subquery, prefix: str) -> ColumnElement[int]:
    """Every status but rejected: what the dashboard counts as produced."""
    return measure(rows, prefix, ACCEPTED)
