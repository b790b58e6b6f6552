"""Fleet health: which meters report, which are late or silent, and each meter's
readings, energy and rejections in a range.

Flags are the `meter_flagged` events ingest raises (core.meter_health: missing
intervals, register reset, clock ahead, bad signatures), counted per meter and flag.

A meter's state comes from `meters.last_seen_at` (set by every accepted or refused
submission) against the expected cadence: reporting within LATE_AFTER, late until
SILENT_AFTER, silent beyond (or never seen). Suspended meters are counted apart:
they are silent on purpose. Rejections are the meter_reading_validation_failed
events naming the meter (docs/EVENTS.md), grouped by error code in SQL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.db.models import Event, Meter, MeterReading, MeterStatus, User
from core.events import EventType
from core.rollups.since import per_meter_since
from core.views._sql import require_staff, time_bucket

CADENCE = timedelta(minutes=15)  # the demo fleet's and GridTokenX meters' interval
LATE_AFTER = 2 * CADENCE
SILENT_AFTER = timedelta(hours=2)
FLAGGED_SINCE = timedelta(hours=24)  # the Overview's "flagged": a flag in the last day


class Health(StrEnum):
    REPORTING = "reporting"
    LATE = "late"
    SILENT = "silent"
    SUSPENDED = "suspended"


def health_of(status: str, last_seen: datetime | None, now: datetime) -> Health:
    if status == MeterStatus.SUSPENDED:
        return Health.SUSPENDED
    if last_seen is None or now - last_seen > SILENT_AFTER:
        return Health.SILENT
    if now - last_seen > LATE_AFTER:
        return Health.LATE
    return Health.REPORTING


@dataclass(frozen=True, slots=True)
class MeterHealth:
    serial: str
    owner: str
    status: str
    health: Health
    last_seen_at: datetime | None
    readings: int
    kwh_micro: int
    cadence_secs: int | None  # the median gap is costly; this is range / readings
    rejections: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())


@dataclass(frozen=True, slots=True)
class FleetSummary:
    counts: dict[Health, int]
    worst: list[tuple[str, Health, datetime | None]]  # silent first, longest unseen first
    flagged: list[str] = field(default_factory=list)  # meters flagged since FLAGGED_SINCE


def fleet_summary(session: Session, viewer: User, now: datetime, *, worst: int = 5) -> FleetSummary:
    """Counts per state over the meters table only (one row per meter): cheap."""
    require_staff(viewer)
    rows = session.execute(select(Meter.serial, Meter.status, Meter.last_seen_at)).all()
    states = [(serial, health_of(status, seen, now), seen) for serial, status, seen in rows]
    counts = Counter(state for _, state, _ in states)
    rank = {Health.SILENT: 0, Health.LATE: 1}
    troubled = sorted(
        (s for s in states if s[1] in rank),
        key=lambda s: (rank[s[1]], s[2].timestamp() if s[2] else float("-inf")),
    )
    flagged = sorted({serial for serial, _, _ in flag_counts(session, now - FLAGGED_SINCE)})
    return FleetSummary(
        {state: counts.get(state, 0) for state in Health}, troubled[:worst], flagged
    )


def fleet(session: Session, viewer: User, now: datetime, since: datetime) -> list[MeterHealth]:
    """Every meter with its readings, energy and rejections since `since`."""
    require_staff(viewer)
    owner = aliased(User)
    meters = session.execute(
        select(Meter.id, Meter.serial, owner.username, Meter.status, Meter.last_seen_at)
        .join(owner, owner.id == Meter.owner_id)
        .order_by(Meter.serial)
    ).all()
    totals = per_meter_since(session, since)
    rejections: dict[str, dict[str, int]] = {}
    for serial, code, count in rejection_counts(session, since):
        rejections.setdefault(serial, {})[code] = int(count)
    flags: dict[str, dict[str, int]] = {}
    for serial, flag, count in flag_counts(session, since):
        flags.setdefault(serial, {})[flag] = int(count)
    span = max(1, int((now - since).total_seconds()))
    result = []
    for meter_id, serial, username, status, seen in meters:
        count, kwh = totals.get(meter_id, (0, 0))
        result.append(
            MeterHealth(
                serial=serial,
                owner=username,
                status=status,
                health=health_of(status, seen, now),
                last_seen_at=seen,
                readings=count,
                kwh_micro=kwh,
                cadence_secs=span // count if count else None,
                rejections=rejections.get(serial, {}),
                flags=flags.get(serial, {}),
            )
        )
    return result


def _by_meter(
    session: Session, event_type: EventType, key: str, since: datetime
) -> list[tuple[str, str, int]]:
    """(meter serial, payload[key], count) of `event_type` events since `since`."""
    meter_serial = Event.payload["meter_serial"].as_string()
    value = Event.payload[key].as_string()
    statement = (
        select(meter_serial, value, func.count())
        .where(Event.type == event_type.value)
        .where(Event.created_at >= since)
        .group_by(meter_serial, value)
    )
    return [(s, v or "?", int(n)) for s, v, n in session.execute(statement) if s]


def rejection_counts(session: Session, since: datetime) -> list[tuple[str, str, int]]:
    """(meter serial, error code, count) of refused submissions since `since`."""
    return _by_meter(session, EventType.METER_READING_VALIDATION_FAILED, "error_code", since)


def flag_counts(session: Session, since: datetime) -> list[tuple[str, str, int]]:
    """(meter serial, flag, count) of meter_flagged events since `since`."""
    return _by_meter(session, EventType.METER_FLAGGED, "flag", since)


def meter_serials(session: Session, viewer: User) -> list[str]:
    require_staff(viewer)
    return list(session.scalars(select(Meter.serial).order_by(Meter.serial)))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    bucket_start: int  # epoch seconds
    readings: int
    kwh_micro: int


def meter_curve(
    session: Session, viewer: User, serial: str, since: datetime, bucket_secs: int
) -> list[CurvePoint]:
    """One meter's energy per bucket since `since` (the drill-down's chart).

    From the rows: UNIQUE(meter_id, reading_timestamp) bounds it to this meter's range,
    as many rows as its 15-minute rollup would hold at the fleet's cadence."""
    require_staff(viewer)
    bucket = time_bucket(MeterReading.reading_timestamp, bucket_secs).label("bucket")
    rows = session.execute(
        select(bucket, func.count(), func.coalesce(func.sum(MeterReading.kwh_micro), 0))
        .join(Meter, Meter.id == MeterReading.meter_id)
        .where(Meter.serial == serial, MeterReading.reading_timestamp >= since)
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    return [CurvePoint(int(b), int(n), int(k)) for b, n, k in rows]
