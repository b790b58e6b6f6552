"""Minting: the queue over time, batches, acceptance -> minted latency, failures.

The queue and the latency read the fleet's flow (core.rollups.flow): per 15 minutes of
submitted_at and minted_at, and the latency histogram per 15 minutes of minted_at, so
neither grows with the table. Buckets finer than 15 minutes (the last hour by minute)
and a range's partial first bucket read the rows, bounded by the submitted_at and
minted_at indexes to at most that range. Recent batches are the newest by primary key
and their readings by the mint_batch_id index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db.models import CERTIFICATE_KINDS, MeterReading, MintBatch, ReadingStatus, User
from core.minting.minted_buckets import BUCKET_SECS, bucket_of
from core.rollups.flow import Axis, flow_per_bucket, latency_histogram, serves
from core.views._sql import (
    Window,
    epoch_seconds,
    from_epoch,
    require_staff,
    status_is_not,
    time_bucket,
)

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class QueuePoint:
    bucket_start: datetime
    accepted: int
    minted: int
    depth: int  # readings accepted but not minted at the end of the bucket


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    status: str
    signature: str | None
    total_readings: int
    total_base_units: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    avg_latency_secs: int | None  # acceptance -> minted, over the batch's readings
    max_latency_secs: int | None


@dataclass(frozen=True, slots=True)
class Latency:
    readings: int
    percentiles: dict[int, int]  # percentile -> seconds


def _latency() -> ColumnElement[int]:
    # Whole seconds from acceptance to the confirmed mint.
    return epoch_seconds(MeterReading.minted_at) - epoch_seconds(MeterReading.submitted_at)


def queue_depth(session: Session, viewer: User, window: Window) -> list[QueuePoint]:
    """Readings waiting to be minted over time, derived from submitted_at and minted_at.

    Walks back from today's open count: depth before a bucket = depth after it - accepted
    in it + minted in it. Rejected readings never queued; failed ones still wait.
    """
    require_staff(viewer)
    waiting = session.scalar(
        select(func.count()).where(
            status_is_not(MeterReading.status, ReadingStatus.MINTED),
            status_is_not(MeterReading.status, ReadingStatus.REJECTED),
        )
    )
    if serves(window.since, window.bucket_secs):
        args = (window.since, window.until, window.bucket_secs)
        submitted = flow_per_bucket(session, Axis.SUBMITTED, *args)
        accepted = {at: n - rejected for at, (n, rejected, _) in submitted.items()}
        minted = {at: n for at, (n, _, _) in flow_per_bucket(session, Axis.MINTED, *args).items()}
    else:
        accepted = _per_bucket(
            session,
            MeterReading.submitted_at,
            window,
            status_is_not(MeterReading.status, ReadingStatus.REJECTED),
        )
        minted = _per_bucket(session, MeterReading.minted_at, window)
    points: list[QueuePoint] = []
    depth = int(waiting or 0)
    for start in reversed(window.starts()):
        points.append(
            QueuePoint(from_epoch(start), accepted.get(start, 0), minted.get(start, 0), depth)
        )
        depth = max(0, depth - accepted.get(start, 0) + minted.get(start, 0))
    return points[::-1]


def _per_bucket(
    session: Session, column: object, window: Window, *conditions: ColumnElement[bool]
) -> dict[int, int]:
    bucket = time_bucket(column, window.bucket_secs).label("bucket")
    statement = (
        select(bucket, func.count())
        .where(column >= window.since, column < window.until, *conditions)  # type: ignore[operator]
        .group_by(bucket)
    )
    return {int(start): int(count) for start, count in session.execute(statement)}


def recent_batches(
    session: Session, viewer: User, *, limit: int = 50, since: datetime | None = None
) -> list[BatchRow]:
    """The newest mint transactions (created since `since`) with their readings'
    acceptance -> minted latency."""
    require_staff(viewer)
    statement = select(
        MintBatch.id,
        MintBatch.status,
        MintBatch.signature,
        MintBatch.total_readings,
        MintBatch.total_base_units,
        MintBatch.created_at,
        MintBatch.finished_at,
        MintBatch.error,
    ).where(MintBatch.kind.not_in(CERTIFICATE_KINDS))  # their Wh are not GRX
    if since is not None:
        statement = statement.where(MintBatch.created_at >= since)
    batches = session.execute(statement.order_by(MintBatch.id.desc()).limit(limit)).all()
    ids = [row.id for row in batches]
    latency = _latency()
    stats = (
        {
            batch_id: (avg, high)
            for batch_id, avg, high in session.execute(
                select(MeterReading.mint_batch_id, func.avg(latency), func.max(latency))
                .where(MeterReading.mint_batch_id.in_(ids))
                .where(MeterReading.minted_at.is_not(None))
                .group_by(MeterReading.mint_batch_id)
            )
        }
        if ids
        else {}
    )
    rows = []
    for row in batches:
        avg, high = stats.get(row.id, (None, None))
        rows.append(
            BatchRow(
                *row,
                avg_latency_secs=None if avg is None else round(float(avg)),
                max_latency_secs=None if high is None else int(high),
            )
        )
    return rows


def latency_percentiles(session: Session, viewer: User, since: datetime) -> Latency:
    """Acceptance -> minted percentiles for readings minted since `since`.

    A histogram by whole second, the percentiles read off it: exact to the second. Whole
    15-minute buckets of minted_at from the `minted_latency` rollup, the partial bucket
    before them from the rows (at most 15 minutes of them, by the minted_at index).
    """
    require_staff(viewer)
    whole_from = from_epoch(bucket_of(since))  # the first bucket starting at or after since
    if whole_from != since:
        whole_from += timedelta(seconds=BUCKET_SECS)
    counts = latency_histogram(session, whole_from)
    latency = _latency().label("latency")
    for seconds, count in session.execute(
        select(latency, func.count())
        .where(MeterReading.minted_at >= since, MeterReading.minted_at < whole_from)
        .group_by(latency)
    ):
        counts[int(seconds)] = counts.get(int(seconds), 0) + int(count)
    histogram = sorted(counts.items())
    total = sum(count for _, count in histogram)
    result: dict[int, int] = {}
    for percentile in PERCENTILES if total else ():
        rank = max(1, -(-percentile * total // 100))  # nearest-rank method
        seen = 0
        for seconds, count in histogram:
            seen += int(count)
            if seen >= rank:
                result[percentile] = max(0, int(seconds))
                break
    return Latency(readings=total, percentiles=result)
