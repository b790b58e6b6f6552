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

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, case, func, literal_column, or_, select
from sqlalchemy.orm import Session

from core.db.models import Event, Meter, MeterReading, MeterStatus, User
from core.events import EventType
from core.views._sql import contains, require_staff, time_bucket

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
    flagged: list[str] = field(default_factory=list)  # the first few flagged since FLAGGED_SINCE
    flagged_count: int = 0  # every meter flagged since FLAGGED_SINCE
    most_refused: list[tuple[str, int]] = field(default_factory=list)  # most first


def health_sql(now: datetime) -> ColumnElement[str]:
    """health_of in SQL: counted, filtered and ordered where the meters are."""
    return case(
        (Meter.status == MeterStatus.SUSPENDED.value, Health.SUSPENDED.value),
        (
            or_(Meter.last_seen_at.is_(None), Meter.last_seen_at < now - SILENT_AFTER),
            Health.SILENT.value,
        ),
        (Meter.last_seen_at < now - LATE_AFTER, Health.LATE.value),
        else_=Health.REPORTING.value,
    )


def worst_first() -> list[ColumnElement[Any]]:
    """ORDER BY for "worst first": never seen, then the longest unseen (which is silent,
    then late, then reporting: the state falls with last_seen_at), suspended last,
    serial to break ties. Written as ix_meters_worst_first (migration 0207) is, the
    constant inline, so a page is an index range, not a sort of the fleet."""
    suspended = Meter.status == literal_column(f"'{MeterStatus.SUSPENDED.value}'")
    return [suspended, Meter.last_seen_at.asc().nulls_first(), Meter.serial]


def fleet_summary(
    session: Session, viewer: User, now: datetime, *, worst: int = 5, since: datetime | None = None
) -> FleetSummary:
    """Counts per state, the worst meters, the flagged and the most refused, each one
    aggregate in SQL: a few rows whatever the fleet's size. Refusals count from
    `since` (default: FLAGGED_SINCE before now)."""
    require_staff(viewer)
    states = select(health_sql(now).label("health")).subquery()
    grouped = select(states.c.health, func.count()).group_by(states.c.health)
    counts = {health: int(n) for health, n in session.execute(grouped)}
    troubled = session.execute(
        select(Meter.serial, health_sql(now), Meter.last_seen_at)
        .where(health_sql(now).in_([Health.SILENT.value, Health.LATE.value]))
        .order_by(*worst_first())
        .limit(worst)
    ).all()
    flagged = flagged_serials(now - FLAGGED_SINCE).subquery()
    first_flagged = session.scalars(
        select(flagged.c.serial).order_by(flagged.c.serial).limit(worst)
    )
    refused = _serial_of(EventType.METER_READING_VALIDATION_FAILED, since or now - FLAGGED_SINCE)
    most_refused = session.execute(
        select(refused.c.serial, func.count())
        .group_by(refused.c.serial)
        .order_by(func.count().desc(), refused.c.serial)
        .limit(worst)
    ).all()
    return FleetSummary(
        counts={state: counts.get(state.value, 0) for state in Health},
        worst=[(serial, Health(state), seen) for serial, state, seen in troubled],
        flagged=list(first_flagged),
        flagged_count=int(session.scalar(select(func.count()).select_from(flagged)) or 0),
        most_refused=[(serial, int(n)) for serial, n in most_refused],
    )


def _serial_of(event_type: EventType, since: datetime) -> Subquery:
    meter_serial = Event.payload["meter_serial"].as_string()
    return (
        select(meter_serial.label("serial"))
        .where(Event.type == event_type.value, Event.created_at >= since)
        .where(meter_serial.is_not(None))
        .subquery()
    )


def flagged_serials(since: datetime) -> Select[tuple[str]]:
    """The serials flagged since `since`, once each (an IN list or a subquery)."""
    flags = _serial_of(EventType.METER_FLAGGED, since)
    return select(flags.c.serial).distinct()


def by_meter(
    session: Session,
    event_type: EventType,
    key: str,
    since: datetime,
    serials: Collection[str] | None = None,
) -> dict[str, dict[str, int]]:
    """serial -> {payload[key]: count} of `event_type` events since `since`, of `serials`
    (None: of every meter)."""
    meter_serial = Event.payload["meter_serial"].as_string()
    value = Event.payload[key].as_string()
    statement = (
        select(meter_serial, value, func.count())
        .where(Event.type == event_type.value)
        .where(Event.created_at >= since)
        .group_by(meter_serial, value)
    )
    if serials is not None:
        statement = statement.where(meter_serial.in_(list(serials)))
    counts: dict[str, dict[str, int]] = {}
    for serial, found, count in session.execute(statement):
        counts.setdefault(serial, {})[found or "?"] = int(count)
    return counts


def find_serials(
    session: Session, viewer: User, needle: str, *, limit: int = 20, keep: str | None = None
) -> list[str]:
    """Serials containing `needle` (any case), in order, at most `limit`; `keep` (the
    current choice of a picker) comes first when it exists, match or not."""
    require_staff(viewer)
    wanted = contains(Meter.serial, needle)
    order: list[Any] = [Meter.serial]
    if keep:
        wanted = or_(wanted, Meter.serial == keep)
        order.insert(0, case((Meter.serial == keep, 0), else_=1))
    return list(session.scalars(select(Meter.serial).where(wanted).order_by(*order).limit(limit)))


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
