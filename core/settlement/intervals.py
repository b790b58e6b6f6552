"""Telemetry settles into intervals; a closed interval's net surplus becomes a reading.

Intervals are TOKENIZATION_SETTLEMENT_INTERVAL_SECS long (default 900), aligned to
the epoch (:00/:15/:30/:45 by default), cut by the meter's own reading time. An
interval closes when a sample at or after its end arrives (`settle_sample`) or when
TOKENIZATION_SETTLEMENT_GRACE_SECS have passed since its end (`close_due_intervals`,
a scheduler job). Closing makes its net surplus, when above zero, one reading the
mint pipeline claims like any other; net <= 0 is kept and shown, never minted.

Exactly once: each amount is an `interval_amounts` row, UNIQUE(interval_id, seq),
written in the transaction that creates its reading, and an interval is closed by
one guarded change of its row (locked first). A sample that arrives for a closed
interval is not lost: its interval's net is updated and, if the surplus grew, the
difference becomes an adjustment (seq 1, 2, ...) that mints once. A surplus that
shrank cannot be unminted; the interval shows net below what was settled.

Concurrency: every path locks the meter's row first (ingest through claim_meter,
the job explicitly), so one meter's settlement is serialised; SQLite serialises
writers anyway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from core.config import TokenizationConfig
from core.db.models import (
    IntervalAmount,
    IntervalStatus,
    Meter,
    MeterReading,
    ReadingStatus,
    SettlementInterval,
    TelemetrySample,
    User,
)
from core.db.statements import per_dialect
from core.events import EventType, publish
from core.units import format_kwh, micro_to_kwh

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Intervals the grace job closes per transaction.
_JOB_PAGE = 200


@dataclass(frozen=True, slots=True)
class MeterRef:
    """What settlement needs of a meter to write its readings."""

    id: int
    serial: str
    owner_id: int
    wallet_address: str | None
    capacity_kw: Decimal | None


@dataclass(frozen=True, slots=True)
class Settled:
    """Where a sample went: its interval, whether that was already closed, what minted."""

    interval_start: datetime
    interval_end: datetime
    status: str
    late: bool
    readings: tuple[int, ...] = ()
    # The meter's latest interval before this one, when this sample opened a new one.
    opened_after: datetime | None = None
    opened: bool = False


def interval_bounds(at: datetime, length_secs: int) -> tuple[datetime, datetime]:
    """The epoch-aligned interval holding `at` (its start included, its end not)."""
    delta = at - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    start = _EPOCH + timedelta(seconds=seconds - seconds % length_secs)
    return start, start + timedelta(seconds=length_secs)


def meter_ref(session: Session, meter_id: int) -> MeterRef:
    row = session.execute(
        select(Meter.id, Meter.serial, Meter.owner_id, User.wallet_address, Meter.capacity_kw)
        .join(User, User.id == Meter.owner_id)
        .where(Meter.id == meter_id)
    ).one()
    return MeterRef(*row)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A just-stored sample, as settlement needs it."""

    meter: MeterRef
    at: datetime
    energy_micro: int
    generated_micro: int
    consumed_micro: int


def settle_sample(
    session: Session,
    meter: MeterRef,
    at: datetime,
    *,
    energy_micro: int,
    generated_micro: int,
    consumed_micro: int,
    config: TokenizationConfig,
    now: datetime,
) -> Settled:
    """`settle_samples` of one sample."""
    arrival = Arrival(meter, at, energy_micro, generated_micro, consumed_micro)
    [settled] = settle_samples(session, [arrival], config=config, now=now)
    return settled


def settle_samples(
    session: Session, arrivals: Sequence[Arrival], *, config: TokenizationConfig, now: datetime
) -> list[Settled]:
    """Add just-stored samples to their intervals; close what they complete. No commit.

    One statement in the common case, however many samples: every interval's row is
    created or added to by one upsert whose arithmetic runs in SQL (atomic per row,
    so two transactions adding to one interval both count), its new totals returned.
    The samples are of distinct meters (their caller stores a meter's samples one
    round after another), so no row is upserted twice in the statement. Samples that
    open intervals read and close more, two statements for all of them (`_openings`);
    a sample that lands in a closed interval is adjusted alone (rare).
    """
    if not arrivals:
        return []
    if len({a.meter.id for a in arrivals}) != len(arrivals):
        raise ValueError("settle_samples takes at most one sample per meter at a time")
    if session.dirty:
        # A Core statement does not autoflush: an interval closed earlier in this
        # transaction (through the ORM) must be closed in the row the upsert reads.
        session.flush()
    bounds = [interval_bounds(a.at, config.settlement_interval_secs) for a in arrivals]
    rows = _upsert(
        session,
        [
            {
                "meter_id": a.meter.id,
                "interval_start": start,
                "interval_end": end,
                "net_micro": a.energy_micro,
                "generated_micro": a.generated_micro,
                "consumed_micro": a.consumed_micro,
            }
            for a, (start, end) in zip(arrivals, bounds, strict=True)
        ],
    )
    by_meter = {row.meter_id: row for row in rows}
    # Intervals are only ever created with one sample, so a count of one is a new row
    # (and a new row is open).
    opened = [by_meter[a.meter.id] for a in arrivals if by_meter[a.meter.id].sample_count == 1]
    openings = _openings(session, opened, arrivals, config, now)
    settled = []
    for arrival, (start, end) in zip(arrivals, bounds, strict=True):
        row = by_meter[arrival.meter.id]
        if row.status == IntervalStatus.CLOSED:
            interval = session.get(SettlementInterval, row.id, populate_existing=True)
            assert interval is not None
            adjusted = _adjust(session, arrival.meter, interval, config, now)
            settled.append(Settled(start, end, row.status, True, tuple(adjusted)))
        elif row.id in openings:
            before, closed, latest = openings[row.id]
            status = IntervalStatus.CLOSED.value if end <= latest else row.status
            settled.append(Settled(start, end, status, False, closed, before, True))
        else:
            settled.append(Settled(start, end, row.status, False))
    return settled


def _openings(
    session: Session,
    opened: list[Any],
    arrivals: Sequence[Arrival],
    config: TokenizationConfig,
    now: datetime,
) -> dict[int, tuple[datetime | None, tuple[int, ...], datetime]]:
    """For each interval just opened: the meter's interval before it, the readings of
    the open intervals its meter's latest sample completes (closed here), that latest.

    A new interval behind the meter's latest sample (a late one) is complete already,
    and closing it may complete earlier ones. An interval that was open before has no
    later sample: that sample would have closed it (and every open one before it) when
    it arrived, so only openings close anything. Two statements for all of them.
    """
    if not opened:
        return {}
    earlier = _T.alias("earlier")
    before = (
        select(func.max(earlier.c.interval_start))
        .where(earlier.c.meter_id == _T.c.meter_id, earlier.c.interval_start < _T.c.interval_start)
        .scalar_subquery()
    )
    stored = (
        select(func.max(_S.c.sample_timestamp)).where(_S.c.meter_id == _T.c.meter_id)
    ).scalar_subquery()
    found = {
        row.id: (row.before, row.stored)
        for row in session.execute(
            select(_T.c.id, before.label("before"), stored.label("stored")).where(
                _T.c.id.in_([row.id for row in opened])
            )
        )
    }
    at = {a.meter.id: a.at for a in arrivals}
    latest = {
        row.meter_id: max(found[row.id][1] or at[row.meter_id], at[row.meter_id]) for row in opened
    }
    # The meters' rows are locked by the caller: locking an open interval of theirs that
    # is not due yet (filtered out below) blocks nobody.
    due = session.scalars(
        select(SettlementInterval)
        .where(
            SettlementInterval.meter_id.in_(sorted(latest)),
            SettlementInterval.status == IntervalStatus.OPEN.value,
            SettlementInterval.interval_end <= max(latest.values()),
        )
        .order_by(SettlementInterval.meter_id, SettlementInterval.interval_start)
        .with_for_update()
        # Samples add to intervals in SQL: what this session loaded before may be stale.
        .execution_options(populate_existing=True)
    ).all()
    by_meter: dict[int, list[SettlementInterval]] = {}
    for interval in due:
        if interval.interval_end <= latest[interval.meter_id]:
            by_meter.setdefault(interval.meter_id, []).append(interval)
    meters = {a.meter.id: a.meter for a in arrivals}
    openings = {}
    for row in opened:
        closed = tuple(
            reading
            for interval in by_meter.get(row.meter_id, [])
            for reading in _close(session, meters[row.meter_id], interval, "sample", config, now)
        )
        openings[row.id] = (found[row.id][0], closed, latest[row.meter_id])
    return openings


_T = SettlementInterval.__table__
_S = TelemetrySample.__table__
# PostgreSQL: the rows as one JSON text, so the statement's text is the same for any
# number of samples (psycopg caches it; a multi-row VALUES list it re-splits in Python).
_UPSERT_JSON = text(
    "INSERT INTO settlement_intervals (meter_id, interval_start, interval_end, status,"
    " net_micro, generated_micro, consumed_micro, sample_count, settled_micro)"
    " SELECT r.meter_id, r.interval_start, r.interval_end, 'open', r.net_micro,"
    " r.generated_micro, r.consumed_micro, 1, 0"
    " FROM json_to_recordset(CAST(:rows AS JSON)) AS r(meter_id INTEGER,"
    " interval_start TIMESTAMPTZ, interval_end TIMESTAMPTZ, net_micro BIGINT,"
    " generated_micro BIGINT, consumed_micro BIGINT)"
    " ON CONFLICT (meter_id, interval_start) DO UPDATE SET"
    " net_micro = settlement_intervals.net_micro + excluded.net_micro,"
    " generated_micro = settlement_intervals.generated_micro + excluded.generated_micro,"
    " consumed_micro = settlement_intervals.consumed_micro + excluded.consumed_micro,"
    " sample_count = settlement_intervals.sample_count + 1"
    " RETURNING id, meter_id, status, sample_count"
)


def _upsert(session: Session, rows: list[dict[str, Any]]) -> list[Any]:
    """INSERT each interval with its sample, or add the sample to it; their new state.

    Atomic per row (the arithmetic runs in SQL), so two transactions adding to one
    interval both count.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        document = json.dumps(
            [
                {
                    **row,
                    "interval_start": row["interval_start"].isoformat(),
                    "interval_end": row["interval_end"].isoformat(),
                }
                for row in rows
            ]
        )
        return session.execute(_UPSERT_JSON, {"rows": document}).all()
    return session.execute(_upsert_statement(dialect), rows).all()


@per_dialect
def _upsert_statement(dialect: str) -> Any:
    # On the table, not the mapped class: a Core statement, without the ORM's
    # bulk-insert machinery (about 3 ms of CPU per statement, measured with cProfile).
    values = sqlite_insert(_T).values(
        meter_id=bindparam("meter_id"),
        interval_start=bindparam("interval_start"),
        interval_end=bindparam("interval_end"),
        status=IntervalStatus.OPEN.value,
        net_micro=bindparam("net_micro"),
        generated_micro=bindparam("generated_micro"),
        consumed_micro=bindparam("consumed_micro"),
        sample_count=1,
        settled_micro=0,
    )
    added = values.excluded
    return values.on_conflict_do_update(
        index_elements=["meter_id", "interval_start"],
        set_={
            "net_micro": _T.c.net_micro + added.net_micro,
            "generated_micro": _T.c.generated_micro + added.generated_micro,
            "consumed_micro": _T.c.consumed_micro + added.consumed_micro,
            "sample_count": _T.c.sample_count + 1,
        },
    ).returning(_T.c.id, _T.c.meter_id, _T.c.status, _T.c.sample_count)


def _close(
    session: Session,
    meter: MeterRef,
    interval: SettlementInterval,
    by: str,
    config: TokenizationConfig,
    now: datetime,
) -> list[int]:
    interval.status = IntervalStatus.CLOSED.value
    interval.closed_at = now
    interval.closed_by = by
    surplus = max(interval.net_micro, 0)
    if surplus == 0:
        return []
    interval.settled_micro = surplus
    return [_amount(session, meter, interval, 0, surplus, surplus, config, now)]


def _adjust(
    session: Session,
    meter: MeterRef,
    interval: SettlementInterval,
    config: TokenizationConfig,
    now: datetime,
) -> list[int]:
    """A late sample changed a closed interval: mint the surplus it added, once."""
    target = max(interval.net_micro, 0)
    delta = target - interval.settled_micro
    if delta <= 0:
        return []
    seq = 1 + (
        session.scalar(
            select(func.max(IntervalAmount.seq)).where(IntervalAmount.interval_id == interval.id)
        )
        or 0
    )
    interval.settled_micro = target
    return [_amount(session, meter, interval, seq, delta, target, config, now)]


def _amount(
    session: Session,
    meter: MeterRef,
    interval: SettlementInterval,
    seq: int,
    micro: int,
    interval_total_micro: int,
    config: TokenizationConfig,
    now: datetime,
) -> int:
    """One mintable reading for `micro` of the interval's surplus; its id."""
    # Imported here: core.readings stores samples through this module.
    from core.readings.plausibility import review_hold

    kwh = micro_to_kwh(micro)
    # Judged on what the interval delivered in all, over the interval's length.
    hold = review_hold(
        micro_to_kwh(interval_total_micro),
        interval.interval_end,
        interval.interval_start,
        capacity_kw=meter.capacity_kw,
        config=config,
        now=now,
    )
    # Its instant is the interval's start (+ seq ms for adjustments): inside the
    # interval, and unique per meter as UNIQUE(meter_id, reading_timestamp) needs.
    at = interval.interval_start + timedelta(milliseconds=seq)
    reading_id = session.scalar(
        insert(MeterReading)
        .values(
            meter_id=meter.id,
            user_id=meter.owner_id,
            wallet_address=meter.wallet_address,
            kwh_micro=micro,
            reading_timestamp=at,
            submitted_at=now,
            status=(ReadingStatus.REVIEW if hold else ReadingStatus.PENDING).value,
            meter_signature=f"interval:{interval.id}:{seq}",
            attempts=0,
            review_reason=hold.reason if hold else None,
        )
        .returning(MeterReading.id)
    )
    assert reading_id is not None
    session.execute(
        insert(IntervalAmount).values(
            interval_id=interval.id,
            seq=seq,
            reading_id=reading_id,
            kwh_micro=micro,
            created_at=now,
        )
    )
    payload: dict[str, Any] = {
        "reading_id": reading_id,
        "user_id": meter.owner_id,
        "wallet_address": meter.wallet_address,
        "meter_serial": meter.serial,
        "kwh_amount": format_kwh(kwh),
        "reading_timestamp": at,
        "status": (ReadingStatus.REVIEW if hold else ReadingStatus.PENDING).value,
        "interval_start": interval.interval_start,
        "interval_end": interval.interval_end,
        "settlement": "surplus" if seq == 0 else "adjustment",
    }
    if hold is not None:
        payload["review_reason"] = hold.reason
    publish(session, EventType.METER_READING_RECEIVED, payload, user_id=meter.owner_id, at=now)
    return reading_id


def close_due_intervals(
    sessions: sessionmaker[Session], config: TokenizationConfig, now: datetime
) -> int:
    """Close every open interval whose grace has passed (the scheduler's job); how many.

    One transaction per meter, its row locked first like ingest does.
    """
    cutoff = now - timedelta(seconds=config.settlement_grace_secs)
    closed = 0
    while True:
        with sessions() as session:
            meter_ids = list(
                session.scalars(
                    select(SettlementInterval.meter_id)
                    .where(
                        SettlementInterval.status == IntervalStatus.OPEN.value,
                        SettlementInterval.interval_end <= cutoff,
                    )
                    .order_by(SettlementInterval.interval_end)
                    .limit(_JOB_PAGE)
                )
            )
            session.rollback()
            if not meter_ids:
                return closed
            for meter_id in dict.fromkeys(meter_ids):
                session.execute(select(Meter.id).where(Meter.id == meter_id).with_for_update())
                meter = meter_ref(session, meter_id)
                due = session.scalars(
                    select(SettlementInterval)
                    .where(
                        SettlementInterval.meter_id == meter_id,
                        SettlementInterval.status == IntervalStatus.OPEN.value,
                        SettlementInterval.interval_end <= cutoff,
                    )
                    .order_by(SettlementInterval.interval_start)
                    .with_for_update()
                ).all()
                for interval in due:
                    _close(session, meter, interval, "grace", config, now)
                    closed += 1
                session.commit()
