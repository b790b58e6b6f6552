"""Storing checked readings: the duplicate rule, the insert and its events, in one transaction.

Concurrency: the transaction first touches the meter row (last_seen_at), which
on PostgreSQL locks it, so two requests of one meter judge duplicates one after
the other; on SQLite write transactions are serialised anyway. UNIQUE(meter_id,
reading_timestamp) stays the last line: a violation rolls everything back
(readings and their events together) and the caller retries, now seeing the row
that won, so a race ends as a duplicate, never as an error.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import Meter, MeterReading, ReadingStatus
from core.events import EventType, publish_many
from core.readings.errors import DuplicateReading
from core.readings.plausibility import energy_hold, hold_together
from core.readings.queries import ReadingView
from core.readings.rules import CheckedReading
from core.readings.writes import insert_if_alone, insert_many, reading_row
from core.units import format_kwh

# Candidates closer than this share one range query (fewer round trips, few extra rows).
_MERGE_GAP = timedelta(hours=1)


@dataclass(slots=True)
class Known:
    """A reading of this meter: stored already, or accepted earlier in this batch."""

    reading_timestamp: datetime
    kwh_micro: int
    signature: str
    id: int | None = None


@dataclass(slots=True)
class Stored:
    """What happened to one checked reading; `duplicate_of` is set for duplicates."""

    index: int
    reading: CheckedReading
    known: Known
    created: bool
    conflict: bool = False  # a different reading in the window (409), not a resend

    def duplicate_error(self) -> DuplicateReading:
        assert self.known.id is not None
        return DuplicateReading(
            f"meter already has reading {self.known.id} at "
            f"{self.known.reading_timestamp.isoformat()}, within the duplicate window",
            self.known.id,
        )


@dataclass(slots=True)
class _Ledger:
    """Known readings sorted by time, to find those within the window of a candidate."""

    times: list[datetime] = field(default_factory=list)
    rows: list[Known] = field(default_factory=list)

    def add(self, known: Known) -> None:
        at = bisect.bisect_right(self.times, known.reading_timestamp)
        self.times.insert(at, known.reading_timestamp)
        self.rows.insert(at, known)

    def near(self, at: datetime, window: timedelta) -> list[Known]:
        # |Δt| < window, and always the same instant (UNIQUE) even with a zero window.
        low = min(bisect.bisect_right(self.times, at - window), bisect.bisect_left(self.times, at))
        high = max(bisect.bisect_left(self.times, at + window), bisect.bisect_right(self.times, at))
        return self.rows[low:high]


# Statements built once: ingest runs them on every request, and Core statements on the
# tables skip the ORM's per-call construction, cache-key and synchronisation work.
_METERS, _READINGS = Meter.__table__, MeterReading.__table__
_TOUCH = (
    update(_METERS)
    .where(_METERS.c.id == bindparam("meter_id"))
    .values(last_seen_at=bindparam("now"))
)
_KNOWN_COLUMNS = (
    _READINGS.c.reading_timestamp,
    _READINGS.c.kwh_micro,
    _READINGS.c.meter_signature,
    _READINGS.c.id,
)
_KNOWN_IN_ONE_RANGE = select(*_KNOWN_COLUMNS).where(
    _READINGS.c.meter_id == bindparam("meter_id"),
    _READINGS.c.reading_timestamp.between(bindparam("low"), bindparam("high")),
)


# The meter's latest reading before an instant (UNIQUE(meter_id, reading_timestamp) serves it).
_PREVIOUS = select(func.max(_READINGS.c.reading_timestamp)).where(
    _READINGS.c.meter_id == bindparam("meter_id"),
    _READINGS.c.reading_timestamp < bindparam("at"),
)
# Every stored instant from the predecessor of `low` up to `high`: with the duplicate
# window (readings >= 15 min apart by default) a week of one meter is ~700 rows.
_AT_TYPE = _READINGS.c.reading_timestamp.type
_PREVIOUS_OF_LOW = (
    select(func.max(_READINGS.c.reading_timestamp))
    .where(
        _READINGS.c.meter_id == bindparam("meter_id"),
        _READINGS.c.reading_timestamp < bindparam("low", type_=_AT_TYPE),
    )
    .scalar_subquery()
)
_INSTANTS_FROM_PREVIOUS = select(_READINGS.c.reading_timestamp).where(
    _READINGS.c.meter_id == bindparam("meter_id"),
    _READINGS.c.reading_timestamp
    >= func.coalesce(_PREVIOUS_OF_LOW, bindparam("low", type_=_AT_TYPE), type_=_AT_TYPE),
    _READINGS.c.reading_timestamp <= bindparam("high", type_=_AT_TYPE),
)


def touch_meter(session: Session, meter_id: int, now: datetime) -> None:
    """Record contact; on PostgreSQL this also locks the meter row until commit."""
    session.execute(_TOUCH, {"meter_id": meter_id, "now": now})


def _load_known(
    session: Session, meter_id: int, instants: Sequence[datetime], window: timedelta
) -> _Ledger:
    ledger = _Ledger()
    if not instants:
        return ledger
    ranges: list[list[datetime]] = []
    for at in sorted(instants):
        if ranges and at - window <= ranges[-1][1] + _MERGE_GAP:
            ranges[-1][1] = at + window
        else:
            ranges.append([at - window, at + window])
    if len(ranges) == 1:
        rows = session.execute(
            _KNOWN_IN_ONE_RANGE, {"meter_id": meter_id, "low": ranges[0][0], "high": ranges[0][1]}
        )
    else:
        rows = session.execute(
            select(*_KNOWN_COLUMNS).where(
                _READINGS.c.meter_id == meter_id,
                or_(*(_READINGS.c.reading_timestamp.between(lo, hi) for lo, hi in ranges)),
            )
        )
    for row in rows:
        ledger.add(Known(*row))
    return ledger


def store_checked(
    session: Session,
    *,
    meter_id: int,
    meter_serial: str,
    owner_id: int,
    wallet_address: str | None,
    checked: Sequence[tuple[int, CheckedReading]],
    config: TokenizationConfig,
    now: datetime,
    capacity_kw: Decimal | None = None,
) -> list[Stored]:
    """Judge duplicates and plausibility, insert the new readings with their events.

    Does not commit. `capacity_kw` is the meter's rated power (None: the configured
    default, TOKENIZATION_MAX_KW_PER_METER).
    """
    window = timedelta(seconds=config.duplicate_window_secs)
    if len(checked) == 1:
        index, reading = checked[0]
        previous = session.scalar(
            _PREVIOUS, {"meter_id": meter_id, "at": reading.reading_timestamp}
        )
        hold = energy_hold(
            reading.kwh, reading.reading_timestamp, previous, capacity_kw=capacity_kw, config=config
        )
        reading = _held(reading, hold or reading.hold)
        row = reading_row(meter_id, owner_id, wallet_address, reading, now)
        reading_id = insert_if_alone(session, row, window)
        if reading_id is not None:
            stored = Stored(index, reading, Known(*_known_of(reading), id=reading_id), True)
            publish_many(
                session, [_received(meter_serial, owner_id, wallet_address, stored)], at=now
            )
            return [stored]
    ledger = _load_known(session, meter_id, [r.reading_timestamp for _, r in checked], window)
    outcomes: list[Stored] = []
    fresh: list[Stored] = []
    for index, reading in checked:
        near = ledger.near(reading.reading_timestamp, window)
        same = next((k for k in near if _identical(k, reading)), None)
        if same is not None or near:
            closest = same or min(
                near, key=lambda k: abs(k.reading_timestamp - reading.reading_timestamp)
            )
            outcomes.append(Stored(index, reading, closest, False, conflict=same is None))
            continue
        known = Known(*_known_of(reading))
        ledger.add(known)
        stored = Stored(index, reading, known, True)
        outcomes.append(stored)
        fresh.append(stored)
    if fresh:
        _judge_energy(session, meter_id, fresh, capacity_kw, config)
        _insert(session, meter_id, meter_serial, owner_id, wallet_address, fresh, now)
    return outcomes


def _judge_energy(
    session: Session,
    meter_id: int,
    fresh: list[Stored],
    capacity_kw: Decimal | None,
    config: TokenizationConfig,
) -> None:
    """Each new reading against the meter's previous one (stored or earlier in this
    batch); a batch with an implausible reading waits whole (plausibility.hold_together)."""
    instants = [s.reading.reading_timestamp for s in fresh]
    stored = session.scalars(
        _INSTANTS_FROM_PREVIOUS, {"meter_id": meter_id, "low": min(instants), "high": max(instants)}
    )
    chain = sorted({*stored, *instants})
    holds = []
    for s in fresh:
        at = s.reading.reading_timestamp
        position = bisect.bisect_left(chain, at)
        previous = chain[position - 1] if position > 0 else None
        energy = energy_hold(s.reading.kwh, at, previous, capacity_kw=capacity_kw, config=config)
        holds.append(energy or s.reading.hold)
    for s, hold in zip(fresh, hold_together(holds), strict=True):
        s.reading = _held(s.reading, hold)


def _held(reading: CheckedReading, hold: Any) -> CheckedReading:
    if hold is reading.hold:
        return reading
    status = ReadingStatus.REVIEW if hold is not None else ReadingStatus.PENDING
    return dataclasses.replace(reading, status=status, hold=hold)


def _identical(known: Known, reading: CheckedReading) -> bool:
    return (
        known.reading_timestamp == reading.reading_timestamp
        and known.kwh_micro == reading.kwh_micro
        and known.signature == reading.signature
    )


def _known_of(reading: CheckedReading) -> tuple[datetime, int, str]:
    return reading.reading_timestamp, reading.kwh_micro, reading.signature


def _insert(
    session: Session,
    meter_id: int,
    meter_serial: str,
    owner_id: int,
    wallet_address: str | None,
    fresh: list[Stored],
    now: datetime,
) -> None:
    rows = [reading_row(meter_id, owner_id, wallet_address, s.reading, now) for s in fresh]
    ids = insert_many(session, rows)
    for stored, reading_id in zip(fresh, ids, strict=True):
        stored.known.id = reading_id
    publish_many(
        session,
        [_received(meter_serial, owner_id, wallet_address, stored) for stored in fresh],
        at=now,
    )


def _received(
    meter_serial: str, owner_id: int, wallet_address: str | None, stored: Stored
) -> tuple[EventType, dict[str, Any], int]:
    """The meter_reading_received event of a stored reading, for its owner to see."""
    payload = {
        "reading_id": stored.known.id,
        "user_id": owner_id,
        "wallet_address": wallet_address,
        "meter_serial": meter_serial,
        "kwh_amount": format_kwh(stored.reading.kwh),
        "reading_timestamp": stored.reading.reading_timestamp,
        "status": stored.reading.status.value,
    }
    if stored.reading.hold is not None:
        payload["review_reason"] = stored.reading.hold.reason
    return EventType.METER_READING_RECEIVED, payload, owner_id


def view_of_new(
    stored: Stored, meter_serial: str, owner_id: int, wallet: str | None, now: datetime
) -> ReadingView:
    """The reading just inserted, without reading it back."""
    assert stored.known.id is not None
    return ReadingView(
        id=stored.known.id,
        meter_serial=meter_serial,
        user_id=owner_id,
        wallet_address=wallet,
        kwh_micro=stored.reading.kwh_micro,
        reading_timestamp=stored.reading.reading_timestamp,
        submitted_at=now,
        status=stored.reading.status.value,
        token_base_units=None,
        mint_tx_signature=None,
        review_reason=stored.reading.hold.reason if stored.reading.hold else None,
    )
