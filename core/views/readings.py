"""Live readings: energy per interval, ingest rate, the latest readings.

Every function takes the viewer: a prosumer's queries are filtered to their own
readings in SQL, so no page can show them anyone else's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, ReadingStatus, User
from core.rollups import DAY, EVERY, measure, regroup, rollup_rows
from core.rollups.flow import Axis, flow_per_bucket, serves
from core.views._sql import (
    Window,
    epoch_of,
    from_epoch,
    is_staff,
    scoped,
    status_is,
    time_bucket,
)
from core.views.filters import InvalidFilter, TableFilter

TOP_SERIES = 8  # more lines than this on one chart are unreadable; the rest is "other"
OTHER = "other"


class Split(StrEnum):
    TOTAL = "total"
    METER = "meter"
    PROSUMER = "prosumer"


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    series: str
    bucket_start: datetime
    kwh_micro: int
    readings: int


@dataclass(frozen=True, slots=True)
class RatePoint:
    bucket_start: datetime
    readings: int


@dataclass(frozen=True, slots=True)
class ReadingRow:
    id: int
    meter_serial: str
    username: str
    kwh_micro: int
    reading_timestamp: datetime
    submitted_at: datetime
    status: str
    token_base_units: int | None
    mint_tx_signature: str | None
    last_error: str | None
    review_reason: str | None = None


def energy_series(
    session: Session, viewer: User, window: Window, split: Split = Split.TOTAL
) -> list[SeriesPoint]:
    """kWh per bucket of reading_timestamp: one total series, or the top meters or
    prosumers by energy in the window plus "other" (every bucket present, empty ones 0).

    One pass over the window's daily rollups (days) or rows (finer buckets), grouped by
    bucket and meter (or prosumer) in SQL; the top series are picked from
    those few thousand sums, not by a second scan.
    """
    if split == Split.TOTAL and is_staff(viewer) and _from_flow(window):
        flow = flow_per_bucket(
            session, Axis.READING, window.since, window.until, window.bucket_secs
        )
        if not any(n for n, _, _ in flow.values()):
            return []  # as from the rows: no series without a reading
        return [
            SeriesPoint("total", from_epoch(at), flow[at][2], flow[at][0])
            if at in flow
            else SeriesPoint("total", from_epoch(at), 0, 0)
            for at in window.starts()
        ]
    statement, user_column = _energy_sums(window, split)
    sums: dict[tuple[int, int], list[int]] = {}
    totals: dict[int, int] = {}
    for start, key, kwh, count in session.execute(scoped(statement, viewer, user_column)):
        if not count:  # every reading of the key moved to another bucket
            continue
        sums[int(start), int(key)] = [int(kwh), int(count)]
        totals[int(key)] = totals.get(int(key), 0) + int(kwh)
    top = sorted(totals, key=lambda key: (-totals[key], key))[:TOP_SERIES]
    names = _series_names(session, split, top)
    folded: dict[tuple[int, int], list[int]] = {}
    for (start, key), (kwh, count) in sums.items():
        cell = folded.setdefault((start, key if key in names else -1), [0, 0])
        cell[0] += kwh
        cell[1] += count
    # Largest first, "other" last: the legend reads in order of importance.
    order = top + ([-1] if len(totals) > len(top) else [])
    return [
        SeriesPoint(names.get(key, OTHER), from_epoch(start), *folded.get((start, key), (0, 0)))
        for key in order
        for start in window.starts()
    ]


def _from_flow(window: Window) -> bool:
    """The fleet total at 15 minutes to under a day: the flow (days: the daily rollup)."""
    return bool(window.bucket_secs % DAY.bucket_secs) and serves(window.since, window.bucket_secs)


def _energy_sums(window: Window, split: Split) -> tuple[Select[Any], Any]:
    """(bucket, series key, micro-kWh, readings) per bucket: buckets of whole days from
    the daily rollups; finer ones (the last hour to the last 7 days) from the rows, which
    the window bounds. At a 15-minute cadence the 15-minute rollup holds as many rows as
    the readings and is slower to sum (bench: 7 days hourly by meter, 300,000 readings,
    580-766 ms from it against 385 ms from the rows)."""
    if window.bucket_secs % DAY.bucket_secs:
        bucket = time_bucket(MeterReading.reading_timestamp, window.bucket_secs)
        keys = {Split.METER: MeterReading.meter_id, Split.PROSUMER: MeterReading.user_id}
        measures = [func.sum(MeterReading.kwh_micro), func.count()]
        since = MeterReading.reading_timestamp >= window.since
        until = MeterReading.reading_timestamp < window.until
        user_column = MeterReading.user_id
    else:
        rows = rollup_rows(DAY)
        bucket = regroup(rows, window.bucket_secs)
        keys = {Split.METER: rows.c.meter_id, Split.PROSUMER: rows.c.user_id}
        measures = [measure(rows, "kwh", EVERY), measure(rows, "n", EVERY)]
        since = rows.c.bucket >= epoch_of(window.since)
        until = rows.c.bucket < epoch_of(window.until)
        user_column = rows.c.user_id
    key: ColumnElement[int] = keys.get(split, literal_column("0"))
    statement = (
        select(bucket.label("bucket"), key, *measures)
        .where(since, until)
        .group_by(bucket, *([] if split == Split.TOTAL else [key]))
    )
    return statement, user_column


def _series_names(session: Session, split: Split, ids: list[int]) -> dict[int, str]:
    if split == Split.TOTAL:
        return {0: "total"}
    label = (Meter.id, Meter.serial) if split == Split.METER else (User.id, User.username)
    return {
        int(ident): str(name)
        for ident, name in session.execute(select(*label).where(label[0].in_(ids)))
    }


def ingest_rate(session: Session, viewer: User, window: Window) -> list[RatePoint]:
    """Readings received per bucket (by submitted_at): is the fleet reporting?

    Staff at 15 minutes and up: the fleet's flow (one row per bucket). Finer buckets
    and a prosumer's own readings: the rows, bounded by the submitted_at index to the
    window.
    """
    if is_staff(viewer) and serves(window.since, window.bucket_secs):
        flow = flow_per_bucket(
            session, Axis.SUBMITTED, window.since, window.until, window.bucket_secs
        )
        return [RatePoint(from_epoch(at), flow.get(at, (0, 0, 0))[0]) for at in window.starts()]
    bucket = time_bucket(MeterReading.submitted_at, window.bucket_secs).label("bucket")
    statement = (
        select(bucket, func.count())
        .where(MeterReading.submitted_at >= window.since, MeterReading.submitted_at < window.until)
        .group_by(bucket)
    )
    counts = {
        int(b): int(n) for b, n in session.execute(scoped(statement, viewer, MeterReading.user_id))
    }
    return [RatePoint(from_epoch(start), counts.get(start, 0)) for start in window.starts()]


def readings_statement(viewer: User, flt: TableFilter) -> Select[Any]:
    """ReadingRow's columns for the readings `flt` selects, unordered: the live page's
    table and the readings export both read this."""
    statement = (
        select(
            MeterReading.id,
            Meter.serial,
            User.username,
            MeterReading.kwh_micro,
            MeterReading.reading_timestamp,
            MeterReading.submitted_at,
            MeterReading.status,
            MeterReading.token_base_units,
            MeterReading.mint_tx_signature,
            MeterReading.last_error,
            MeterReading.review_reason,
        )
        .join(Meter, Meter.id == MeterReading.meter_id)
        .join(User, User.id == MeterReading.user_id)
    )
    if flt.since is not None:
        statement = statement.where(MeterReading.reading_timestamp >= flt.since)
    if flt.until is not None:
        statement = statement.where(MeterReading.reading_timestamp < flt.until)
    if flt.meter:
        statement = statement.where(Meter.serial == flt.meter)
    if flt.user:
        statement = statement.where(User.username == flt.user)
    if flt.status:
        try:
            status = ReadingStatus(flt.status)
        except ValueError as exc:
            raise InvalidFilter(
                f"status: {flt.status!r} is not a reading status", field="status"
            ) from exc
        statement = statement.where(status_is(MeterReading.status, status))
    return scoped(statement, viewer, MeterReading.user_id)


def filtered_readings(
    session: Session, viewer: User, flt: TableFilter, *, limit: int = 50
) -> list[ReadingRow]:
    """The newest readings (by id) that `flt` selects."""
    statement = readings_statement(viewer, flt).order_by(MeterReading.id.desc()).limit(limit)
    return [ReadingRow(*row) for row in session.execute(statement)]


def latest_readings(
    session: Session, viewer: User, *, limit: int = 50, status: ReadingStatus | None = None
) -> list[ReadingRow]:
    """The newest readings; with `status`, the newest of that status (review, failed...)."""
    statement = (
        select(
            MeterReading.id,
            Meter.serial,
            User.username,
            MeterReading.kwh_micro,
            MeterReading.reading_timestamp,
            MeterReading.submitted_at,
            MeterReading.status,
            MeterReading.token_base_units,
            MeterReading.mint_tx_signature,
            MeterReading.last_error,
            MeterReading.review_reason,
        )
        .join(Meter, Meter.id == MeterReading.meter_id)
        .join(User, User.id == MeterReading.user_id)
        .limit(limit)
    )
    if status is None:
        statement = statement.order_by(
            MeterReading.reading_timestamp.desc(), MeterReading.id.desc()
        )
    else:
        # Newest by id: the open statuses' partial index is (status, id).
        statement = statement.where(status_is(MeterReading.status, status)).order_by(
            MeterReading.id.desc()
        )
    scoped_statement = scoped(statement, viewer, MeterReading.user_id)
    return [ReadingRow(*row) for row in session.execute(scoped_statement)]


def count_by_status(session: Session, viewer: User, status: ReadingStatus) -> int:
    statement = select(func.count()).where(status_is(MeterReading.status, status))
    return int(session.scalar(scoped(statement, viewer, MeterReading.user_id)) or 0)
