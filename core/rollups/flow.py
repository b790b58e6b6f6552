"""The fleet's flow of readings per 15 minutes of one time axis (migration 0205).

Axis READING buckets reading_timestamp, SUBMITTED submitted_at, MINTED minted_at: one
row per axis and bucket however many meters report, so the Minting queue, the ingest
rate, the cockpit bars and the live chart's total read a day from 96 rows. Readers add
PostgreSQL's unfolded deltas in the same statement (as core.rollups.source does).

A window is served from here only when its buckets are whole multiples of 15 minutes
and start on a 15-minute edge (every chart window of 15 minutes and up does); finer
buckets (the last hour by minute) read the rows, bounded by the time index.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ColumnElement, Subquery, func, literal_column, select, union_all
from sqlalchemy.orm import Session

from core.db.models import MintedLatency, ReadingFlow, ReadingFlowDelta
from core.minting.minted_buckets import BUCKET_SECS, bucket_of

__all__ = ["BUCKET_SECS", "Axis", "flow_per_bucket", "latency_histogram", "serves"]


class Axis(StrEnum):
    READING = "reading"
    SUBMITTED = "submitted"
    MINTED = "minted"


def serves(since: datetime, bucket_secs: int) -> bool:
    """Whether buckets of `bucket_secs` from `since` are unions of whole flow buckets."""
    return bucket_secs % BUCKET_SECS == 0 and int(since.timestamp()) % BUCKET_SECS == 0


def _rows(axis: Axis) -> Subquery:
    folded = ReadingFlow.__table__.c
    deltas = ReadingFlowDelta.__table__.c
    parts = [
        select(table.bucket, table.readings, table.rejected, table.kwh_micro).where(
            table.axis == axis.value
        )
        for table in (folded, deltas)
    ]
    return union_all(*parts).subquery("flow")


def flow_per_bucket(
    session: Session, axis: Axis, since: datetime, until: datetime, bucket_secs: int
) -> dict[int, tuple[int, int, int]]:
    """bucket start -> (readings, rejected, micro-kWh) for whole flow buckets in
    [since, until), regrouped into buckets of `bucket_secs` (see `serves`)."""
    if not serves(since, bucket_secs):
        raise ValueError("a window of whole 15-minute buckets, in multiples of 15 minutes")
    rows = _rows(axis)
    size = literal_column(str(int(bucket_secs)), BigInteger())  # inlined: see time_bucket
    group: ColumnElement[int] = (
        rows.c.bucket.op("/", return_type=BigInteger())(size).op("*", return_type=BigInteger())(
            size
        )
    ).label("start")
    statement = (
        select(
            group, func.sum(rows.c.readings), func.sum(rows.c.rejected), func.sum(rows.c.kwh_micro)
        )
        .where(rows.c.bucket >= bucket_of(since), rows.c.bucket < bucket_of(until))
        .group_by(group)
    )
    return {
        int(start): (int(n), int(rejected), int(kwh))
        for start, n, rejected, kwh in session.execute(statement)
        if n or rejected or kwh
    }


def latency_histogram(session: Session, since: datetime) -> dict[int, int]:
    """latency seconds -> readings, of whole minted_at buckets from `since` on (`since` on a
    15-minute edge; the caller adds the partial bucket before it from the rows)."""
    table = MintedLatency.__table__.c
    statement = (
        select(table.latency_secs, func.sum(table.readings))
        .where(table.bucket >= bucket_of(since))
        .group_by(table.latency_secs)
    )
    return {int(seconds): int(n) for seconds, n in session.execute(statement) if n}
