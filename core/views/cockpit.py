"""The Overview's picture of today: energy generated and minted per 15 minutes, and
the list of what needs a person now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading, User
from core.rollups.flow import Axis, flow_per_bucket
from core.views._sql import day_start, from_epoch, require_staff, time_bucket

BAR_SECS = 900


@dataclass(frozen=True, slots=True)
class TodayBar:
    bucket_start: datetime
    generated_kwh_micro: int  # by reading time
    minted_kwh_micro: int  # by the time it was minted


def today_bars(session: Session, viewer: User, now: datetime) -> list[TodayBar]:
    """Every 15-minute bar of the UTC day up to the one holding `now` (filling live).

    The bars before the current one from the fleet's flow (one row per bar and axis);
    the current bar, filling up to `now`, from its rows (at most 15 minutes of them, by
    the reading_timestamp and minted_at indexes).
    """
    require_staff(viewer)
    start = day_start(now)
    first = int(start.timestamp())
    last = int(now.timestamp()) // BAR_SECS * BAR_SECS
    current = from_epoch(last)
    generated = _sums(session, MeterReading.reading_timestamp, current, now)
    minted = _sums(session, MeterReading.minted_at, current, now)
    for axis, sums in ((Axis.READING, generated), (Axis.MINTED, minted)):
        for at, (_, _, kwh) in flow_per_bucket(session, axis, start, current, BAR_SECS).items():
            sums[at] = kwh
    return [
        TodayBar(from_epoch(at), generated.get(at, 0), minted.get(at, 0))
        for at in range(first, last + 1, BAR_SECS)
    ]


def _sums(session: Session, column: object, start: datetime, now: datetime) -> dict[int, int]:
    bucket = time_bucket(column, BAR_SECS).label("bucket")
    statement = (
        select(bucket, func.coalesce(func.sum(MeterReading.kwh_micro), 0))
        .where(column >= start)  # type: ignore[operator]
        .where(column <= now)  # type: ignore[operator]
        .group_by(bucket)
    )
    return {int(at): int(kwh) for at, kwh in session.execute(statement)}


@dataclass(frozen=True, slots=True)
class Attention:
    """One thing a person should look at, and the page where it is handled."""

    what: str
    count: int  # 0: a condition, not a count
    page: str  # a url_path in pages.common.registry
    severity: str  # "error" | "warning"


def attention_items(
    *,
    review: int,
    failed: int,
    mismatch: bool,
    payer_low: bool,
    silent: int,
    late: int,
    flagged: int = 0,
) -> list[Attention]:
    """What needs a person, most urgent first; empty when all is well."""
    items = [
        Attention("on-chain supply differs from the database (auto-mint paused)", 0,
                  "control", "error") if mismatch else None,
        Attention("fee payer below its minimum: fund it", 0, "minting", "error")
        if payer_low else None,
        Attention("failed readings out of retries", failed, "minting", "error") if failed else None,
        Attention("readings waiting in review", review, "review", "warning") if review else None,
        Attention("silent meters", silent, "fleet", "warning") if silent else None,
        Attention("flagged meters", flagged, "fleet", "warning") if flagged else None,
        Attention("late meters", late, "fleet", "warning") if late else None,
    ]  # fmt: skip
    return [item for item in items if item is not None]
