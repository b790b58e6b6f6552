"""Readings minted per 15 minutes of `minted_at`: the costs panel reads these, not rows.

Triggers on meter_readings (migration 0202) keep `minted_buckets` in the transaction of
whatever writes `minted_at` (a confirmed batch, a claim's readings worth 0 base units,
or any other writer: nothing can bypass them). A count over any range is exact: whole
buckets from here, and the at most two partial buckets at its ends from the rows, by
the `minted_at` index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, func, literal_column, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading, MintedBucket

BUCKET_SECS = 900
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_of(moment: datetime) -> int:
    """Epoch seconds of the bucket holding `moment`, by integer arithmetic (no float)."""
    return (moment - EPOCH) // timedelta(seconds=BUCKET_SECS) * BUCKET_SECS


def _moment(epoch: int) -> datetime:
    return EPOCH + timedelta(seconds=epoch)


def _raw_sums(session: Session, since: datetime, until: datetime) -> tuple[int, int]:
    if since >= until:
        return 0, 0
    readings, units = session.execute(
        select(func.count(), func.coalesce(func.sum(MeterReading.token_base_units), 0)).where(
            MeterReading.minted_at >= since, MeterReading.minted_at < until
        )
    ).one()
    return int(readings), int(units)


def minted_sums(session: Session, since: datetime, until: datetime) -> tuple[int, int]:
    """(readings, base units) with since <= minted_at < until."""
    whole_from = bucket_of(since)  # the first bucket starting at or after `since`
    if _moment(whole_from) != since:
        whole_from += BUCKET_SECS
    whole_until = bucket_of(until)  # the bucket holding `until` is partial
    if whole_from >= whole_until:
        return _raw_sums(session, since, until)
    readings, units = session.execute(
        select(
            func.coalesce(func.sum(MintedBucket.readings), 0),
            func.coalesce(func.sum(MintedBucket.base_units), 0),
        ).where(MintedBucket.bucket >= whole_from, MintedBucket.bucket < whole_until)
    ).one()
    head = _raw_sums(session, since, _moment(whole_from))
    tail = _raw_sums(session, _moment(whole_until), until)
    return int(readings) + head[0] + tail[0], int(units) + head[1] + tail[1]


def minted_between(session: Session, since: datetime, until: datetime) -> int:
    """Readings with since <= minted_at < until."""
    return minted_sums(session, since, until)[0]


def minted_per_bucket(
    session: Session, since: datetime, until: datetime, bucket_secs: int
) -> dict[int, int]:
    """Readings minted per `bucket_secs` bucket (epoch start -> count) of an aligned window."""
    start, end = bucket_of(since), bucket_of(until)
    if bucket_secs % BUCKET_SECS or (_moment(start), _moment(end)) != (since, until):
        raise ValueError("a window of whole 15-minute buckets, in multiples of 15 minutes")
    size = literal_column(str(int(bucket_secs)), BigInteger())  # inlined: see time_bucket
    group = (
        MintedBucket.bucket.op("/", return_type=BigInteger())(size)
        .op("*", return_type=BigInteger())(size)
        .label("start")
    )
    rows = session.execute(
        select(group, func.sum(MintedBucket.readings))
        .where(MintedBucket.bucket >= start, MintedBucket.bucket < end)
        .group_by(group)
    )
    return {int(at): int(count) for at, count in rows}
