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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading
from core.events import EventType, publish_many
from core.readings.errors import DuplicateReading
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
    window_secs: int,
    now: datetime,
) -> list[Stored]:
    """Judge duplicates and insert the new readings with their events; does not commit."""
    window = timedelta(seconds=window_secs)
    if len(checked) == 1:
        index, reading = checked[0]
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
        _insert(session, meter_id, meter_serial, owner_id, wallet_address, fresh, now)
    return outcomes


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
    )
