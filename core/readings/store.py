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
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, text, update
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

# The same two queries for many meters at once (PostgreSQL): (meter_id, low, high) as arrays,
# so the statement text, and psycopg's prepared statement, stays the same for any count.
_KNOWN_IN_RANGES_UNNEST = text(
    "SELECT r.meter_id, r.reading_timestamp, r.kwh_micro, r.meter_signature, r.id"
    " FROM unnest(CAST(:meter_ids AS INTEGER[]), CAST(:lows AS TIMESTAMPTZ[]),"
    " CAST(:highs AS TIMESTAMPTZ[])) AS c(meter_id, low, high)"
    " JOIN meter_readings r ON r.meter_id = c.meter_id"
    " AND r.reading_timestamp BETWEEN c.low AND c.high"
).columns(_READINGS.c.meter_id, *_KNOWN_COLUMNS)
_INSTANTS_FROM_PREVIOUS_UNNEST = text(
    "SELECT r.meter_id, r.reading_timestamp"
    " FROM unnest(CAST(:meter_ids AS INTEGER[]), CAST(:lows AS TIMESTAMPTZ[]),"
    " CAST(:highs AS TIMESTAMPTZ[])) AS c(meter_id, low, high)"
    " JOIN meter_readings r ON r.meter_id = c.meter_id"
    " AND r.reading_timestamp <= c.high AND r.reading_timestamp >= COALESCE("
    " (SELECT max(p.reading_timestamp) FROM meter_readings p"
    " WHERE p.meter_id = c.meter_id AND p.reading_timestamp < c.low), c.low)"
).columns(_READINGS.c.meter_id, _READINGS.c.reading_timestamp)


def touch_meter(session: Session, meter_id: int, now: datetime) -> None:
    """Record contact; on PostgreSQL this also locks the meter row until commit."""
    session.execute(_TOUCH, {"meter_id": meter_id, "now": now})


# Locked in id order (the subquery's FOR UPDATE), as every unit of work locks its meters,
# so two units naming the same meters wait for each other and never deadlock.
_TOUCH_MANY_LOCKED = text(
    "UPDATE meters SET last_seen_at = :now WHERE id IN"
    " (SELECT id FROM meters WHERE id = ANY(CAST(:meter_ids AS INTEGER[])) ORDER BY id FOR UPDATE)"
)
_TOUCH_MANY = (
    update(_METERS)
    .where(_METERS.c.id.in_(bindparam("meter_ids", expanding=True)))
    .values(last_seen_at=bindparam("now"))
)


def touch_meters(session: Session, meter_ids: Sequence[int], now: datetime) -> None:
    """`touch_meter` for several meters in one statement, locking them in id order."""
    wanted = sorted(set(meter_ids))
    if len(wanted) == 1:
        touch_meter(session, wanted[0], now)
    elif wanted:
        statement = _TOUCH_MANY_LOCKED if _is_postgresql(session) else _TOUCH_MANY
        session.execute(statement, {"meter_ids": wanted, "now": now})


def _ranges(instants: Sequence[datetime], window: timedelta) -> list[tuple[datetime, datetime]]:
    """The time ranges to look in around `instants`, neighbours merged."""
    ranges: list[list[datetime]] = []
    for at in sorted(instants):
        if ranges and at - window <= ranges[-1][1] + _MERGE_GAP:
            ranges[-1][1] = at + window
        else:
            ranges.append([at - window, at + window])
    return [(low, high) for low, high in ranges]


def _load_known(
    session: Session, instants: dict[int, list[datetime]], window: timedelta
) -> dict[int, _Ledger]:
    """Each meter's stored readings within the window of its candidates."""
    ledgers: dict[int, _Ledger] = {}
    wanted = [
        (meter_id, low, high)
        for meter_id, ats in sorted(instants.items())
        if ats
        for low, high in _ranges(ats, window)
    ]
    if not wanted:
        return ledgers
    if len(wanted) == 1:
        meter_id, low, high = wanted[0]
        one = session.execute(_KNOWN_IN_ONE_RANGE, {"meter_id": meter_id, "low": low, "high": high})
        rows = ((meter_id, *row) for row in one)
    elif _is_postgresql(session):
        rows = session.execute(_KNOWN_IN_RANGES_UNNEST, _columns_of(wanted))
    else:
        rows = session.execute(
            select(_READINGS.c.meter_id, *_KNOWN_COLUMNS).where(
                or_(
                    *(
                        and_(
                            _READINGS.c.meter_id == meter_id,
                            _READINGS.c.reading_timestamp.between(low, high),
                        )
                        for meter_id, low, high in wanted
                    )
                )
            )
        )
    for meter_id, *known in rows:
        ledgers.setdefault(meter_id, _Ledger()).add(Known(*known))
    return ledgers


def _columns_of(wanted: Sequence[tuple[int, datetime, datetime]]) -> dict[str, list[Any]]:
    return {
        "meter_ids": [w[0] for w in wanted],
        "lows": [w[1] for w in wanted],
        "highs": [w[2] for w in wanted],
    }


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@dataclass(slots=True)
class MeterReadings:
    """One part's checked readings and the meter they belong to (several parts may name
    the same meter: a group of individual requests)."""

    meter_id: int
    meter_serial: str
    owner_id: int
    wallet_address: str | None
    checked: Sequence[tuple[int, CheckedReading]]


def store_checked(
    session: Session,
    parts: Sequence[MeterReadings],
    config: TokenizationConfig,
    now: datetime,
) -> list[list[Stored]]:
    """Judge duplicates and plausibility, insert the new readings with their events.

    Set-based over every part: one query for the known readings near the candidates,
    one for the instants plausibility compares with, one INSERT, one event INSERT,
    however many meters and parts. Parts are judged in order, so a reading and its
    resend in two parts are stored once (the second is a resend of the first).
    Each part's outcomes, in order. Does not commit.
    """
    window = timedelta(seconds=config.duplicate_window_secs)
    singles = [p for p in parts if p.checked]
    if len(singles) == 1 and len(singles[0].checked) == 1:
        alone = _store_alone(session, singles[0], config, window, now)
        if alone is not None:
            return [alone if p is singles[0] else [] for p in parts]
    instants: dict[int, list[datetime]] = {}
    for part in parts:
        instants.setdefault(part.meter_id, []).extend(r.reading_timestamp for _, r in part.checked)
    ledgers = _load_known(session, instants, window)
    outcomes: list[list[Stored]] = []
    fresh: list[tuple[MeterReadings, list[Stored]]] = []
    for part in parts:
        ledger = ledgers.setdefault(part.meter_id, _Ledger())
        mine: list[Stored] = []
        new: list[Stored] = []
        for index, reading in part.checked:
            near = ledger.near(reading.reading_timestamp, window)
            same = next((k for k in near if _identical(k, reading)), None)
            if same is not None or near:
                closest = same or min(
                    near, key=lambda k: abs(k.reading_timestamp - reading.reading_timestamp)
                )
                mine.append(Stored(index, reading, closest, False, conflict=same is None))
                continue
            known = Known(*_known_of(reading))
            ledger.add(known)
            stored = Stored(index, reading, known, True)
            mine.append(stored)
            new.append(stored)
        outcomes.append(mine)
        if new:
            fresh.append((part, new))
    if fresh:
        _judge_energy(session, fresh, config)
        _insert(session, fresh, now)
    return outcomes


def _store_alone(
    session: Session,
    part: MeterReadings,
    config: TokenizationConfig,
    window: timedelta,
    now: datetime,
) -> list[Stored] | None:
    """The common case, a lone reading: inserted only if its meter has none in the window,
    in one statement; None when it has (then judged as any other)."""
    [(index, reading)] = part.checked
    previous = session.scalar(
        _PREVIOUS, {"meter_id": part.meter_id, "at": reading.reading_timestamp}
    )
    hold = energy_hold(
        reading.kwh, reading.reading_timestamp, previous, capacity_kw=None, config=config
    )
    reading = _held(reading, hold or reading.hold)
    row = reading_row(part.meter_id, part.owner_id, part.wallet_address, reading, now)
    reading_id = insert_if_alone(session, row, window)
    if reading_id is None:
        return None
    stored = Stored(index, reading, Known(*_known_of(reading), id=reading_id), True)
    publish_many(session, [_received(part, stored)], at=now)
    return [stored]


def _judge_energy(
    session: Session,
    fresh: Sequence[tuple[MeterReadings, list[Stored]]],
    config: TokenizationConfig,
) -> None:
    """Each new reading against its meter's previous one (stored, or new in this unit of
    work); a part with an implausible reading waits whole (plausibility.hold_together)."""
    spans: dict[int, list[datetime]] = {}
    for part, new in fresh:
        spans.setdefault(part.meter_id, []).extend(s.reading.reading_timestamp for s in new)
    chains = {
        meter_id: sorted({*stored, *spans[meter_id]})
        for meter_id, stored in _instants_from_previous(session, spans).items()
    }
    for part, new in fresh:
        chain = chains[part.meter_id]
        holds = []
        for s in new:
            at = s.reading.reading_timestamp
            position = bisect.bisect_left(chain, at)
            previous = chain[position - 1] if position > 0 else None
            energy = energy_hold(s.reading.kwh, at, previous, capacity_kw=None, config=config)
            holds.append(energy or s.reading.hold)
        for s, hold in zip(new, hold_together(holds), strict=True):
            s.reading = _held(s.reading, hold)


def _instants_from_previous(
    session: Session, spans: dict[int, list[datetime]]
) -> dict[int, list[datetime]]:
    """Per meter, every stored instant from the predecessor of its earliest candidate up to
    its latest: one statement on PostgreSQL, one per meter elsewhere."""
    found: dict[int, list[datetime]] = {meter_id: [] for meter_id in spans}
    wanted = [(m, min(ats), max(ats)) for m, ats in sorted(spans.items())]
    if len(wanted) > 1 and _is_postgresql(session):
        for meter_id, at in session.execute(_INSTANTS_FROM_PREVIOUS_UNNEST, _columns_of(wanted)):
            found[meter_id].append(at)
        return found
    for meter_id, low, high in wanted:
        found[meter_id].extend(
            session.scalars(
                _INSTANTS_FROM_PREVIOUS, {"meter_id": meter_id, "low": low, "high": high}
            )
        )
    return found


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
    session: Session, fresh: Sequence[tuple[MeterReadings, list[Stored]]], now: datetime
) -> None:
    """Every new reading of every part in one INSERT, their events in one more."""
    rows = [
        reading_row(part.meter_id, part.owner_id, part.wallet_address, s.reading, now)
        for part, new in fresh
        for s in new
    ]
    ids = iter(insert_many(session, rows))
    for _, new in fresh:
        for stored in new:
            stored.known.id = next(ids)
    publish_many(session, [_received(part, s) for part, new in fresh for s in new], at=now)


def _received(part: MeterReadings, stored: Stored) -> tuple[EventType, dict[str, Any], int]:
    """The meter_reading_received event of a stored reading, for its owner to see."""
    payload = {
        "reading_id": stored.known.id,
        "user_id": part.owner_id,
        "wallet_address": part.wallet_address,
        "meter_serial": part.meter_serial,
        "kwh_amount": format_kwh(stored.reading.kwh),
        "reading_timestamp": stored.reading.reading_timestamp,
        "status": stored.reading.status.value,
    }
    if stored.reading.hold is not None:
        payload["review_reason"] = stored.reading.hold.reason
    return EventType.METER_READING_RECEIVED, payload, part.owner_id


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
