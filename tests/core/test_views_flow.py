"""The views moved onto the fleet's flow (core.rollups.flow) answer what the rows answer.

The oracle is the raw SQL each view ran before (grouping meter_readings by time bucket),
written out here. The database goes through the World of tests/core/test_rollups.py
(accept, review, claim, sign, confirm, fail, retry, rewrite, fold) with the clock
jumping across 15-minute buckets, and every view is compared at every stage, with
PostgreSQL's deltas unfolded and folded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading, User
from core.views._sql import Window, epoch_seconds, from_epoch, time_bucket
from core.views.cockpit import today_bars
from core.views.minting import latency_percentiles, queue_depth
from core.views.readings import Split, energy_series, ingest_rate
from tests.core.test_rollups import World

ROUND = ("accept", "accept", "review", "claim", "settle", "settle", "settle", "retry", "review")


def _per_bucket(session: Session, column, window: Window, *where) -> dict[int, tuple[int, int]]:
    bucket = time_bucket(column, window.bucket_secs).label("b")
    rows = session.execute(
        select(bucket, func.count(), func.coalesce(func.sum(MeterReading.kwh_micro), 0))
        .where(column >= window.since, column < window.until, *where)
        .group_by(bucket)
    )
    return {int(b): (int(n), int(k)) for b, n, k in rows}


def raw_queue(session: Session, window: Window) -> list[tuple[int, int, int]]:
    waiting = session.scalar(
        select(func.count()).where(MeterReading.status.not_in(("minted", "rejected")))
    )
    accepted = _per_bucket(
        session, MeterReading.submitted_at, window, MeterReading.status != "rejected"
    )
    minted = _per_bucket(session, MeterReading.minted_at, window)
    points, depth = [], int(waiting or 0)
    for start in reversed(window.starts()):
        a, m = accepted.get(start, (0, 0))[0], minted.get(start, (0, 0))[0]
        points.append((a, m, depth))
        depth = max(0, depth - a + m)
    return points[::-1]


def raw_latency(session: Session, since: datetime) -> dict[int, int]:
    latency = epoch_seconds(MeterReading.minted_at) - epoch_seconds(MeterReading.submitted_at)
    rows = session.execute(
        select(latency, func.count()).where(MeterReading.minted_at >= since).group_by(latency)
    )
    return {int(s): int(n) for s, n in rows}


def raw_bars(session: Session, now: datetime) -> list[tuple[int, int]]:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sums = []
    for column in (MeterReading.reading_timestamp, MeterReading.minted_at):
        bucket = time_bucket(column, 900).label("b")
        sums.append(
            dict(
                session.execute(
                    select(bucket, func.coalesce(func.sum(MeterReading.kwh_micro), 0))
                    .where(column >= start, column <= now)
                    .group_by(bucket)
                ).all()
            )
        )
    last = int(now.timestamp()) // 900 * 900
    return [
        (int(sums[0].get(at, 0)), int(sums[1].get(at, 0)))
        for at in range(int(start.timestamp()), last + 1, 900)
    ]


def windows(now: datetime) -> list[Window]:
    return [
        Window.ending_at(now, span, bucket)
        for span, bucket in ((3600, 60), (86_400, 900), (7 * 86_400, 3600), (6 * 3600, 1800))
    ]


def compare(world: World) -> int:
    """Every moved view against its raw SQL; the number of readings the windows saw."""
    seen = 0
    with world.sessions() as session:
        admin = world.admin(session)
        prosumer = session.get(User, world.producers[0].user_id)
        for window in windows(world.now):
            queue = queue_depth(session, admin, window)
            assert [(p.accepted, p.minted, p.depth) for p in queue] == raw_queue(session, window)
            rows = _per_bucket(session, MeterReading.submitted_at, window)
            assert [p.readings for p in ingest_rate(session, admin, window)] == [
                rows.get(at, (0, 0))[0] for at in window.starts()
            ]
            mine = _per_bucket(
                session,
                MeterReading.submitted_at,
                window,
                MeterReading.user_id == prosumer.id,
            )
            assert [p.readings for p in ingest_rate(session, prosumer, window)] == [
                mine.get(at, (0, 0))[0] for at in window.starts()
            ]
            energy = _per_bucket(session, MeterReading.reading_timestamp, window)
            points = energy_series(session, admin, window, Split.TOTAL)
            expected = [(k, n) for n, k in (energy.get(at, (0, 0)) for at in window.starts())]
            assert [(p.kwh_micro, p.readings) for p in points] == (expected if energy else [])
            assert all(p.series == "total" for p in points)
            seen += sum(n for n, _ in energy.values())
        for back in (0, 1, 450, 900, 3_599, 86_400):
            since = world.now - timedelta(seconds=back, microseconds=back % 7)
            got = latency_percentiles(session, admin, since)
            histogram = raw_latency(session, since)
            assert got.readings == sum(histogram.values())
            assert got.percentiles == _percentiles(histogram)
        bars = today_bars(session, admin, world.now)
        assert [(b.generated_kwh_micro, b.minted_kwh_micro) for b in bars] == raw_bars(
            session, world.now
        )
        assert bars[-1].bucket_start == from_epoch(int(world.now.timestamp()) // 900 * 900)
    return seen


def _percentiles(histogram: dict[int, int]) -> dict[int, int]:
    """Nearest rank, as the page reads it, computed here from the raw histogram."""
    ordered = sorted(histogram.items())
    total = sum(histogram.values())
    result = {}
    for percentile in (50, 90, 99) if total else ():
        rank, seen = max(1, -(-percentile * total // 100)), 0
        for seconds, count in ordered:
            seen += count
            if seen >= rank:
                result[percentile] = max(0, seconds)
                break
    return result


@pytest.fixture
def world(sessions, engine) -> World:
    return World(sessions, engine)


def test_the_flow_views_equal_the_rows(world: World) -> None:
    seen = 0
    for round_ in range(5):
        for op in ROUND:
            world.apply(op, round_ + 2)
            # jumps of 4-11 minutes: submissions and mints fall into many 15-minute buckets
            world.now += timedelta(minutes=4 + (round_ * 3 + len(op)) % 8, microseconds=round_)
        world.apply("rewrite", round_)
        seen = compare(world)  # PostgreSQL: the deltas not folded yet
        world.apply("fold", 3)
        compare(world)
    with world.sessions() as session:
        statuses = set(session.scalars(select(MeterReading.status).distinct()))
        minted = session.scalar(select(func.count()).where(MeterReading.minted_at.is_not(None)))
    assert {"minted", "rejected", "pending"} <= statuses and minted
    assert seen  # the windows held readings, so the comparisons were not of empty charts
