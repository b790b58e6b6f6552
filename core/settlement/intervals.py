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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
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
    round after another), so no row is upserted twice in the statement. Only a sample
    that opens an interval, or lands in a closed one, reads more.
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
    rows = session.execute(
        _upsert(session),
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
    ).all()
    by_meter = {row.meter_id: row for row in rows}
    return [
        _after_upsert(session, a, by_meter[a.meter.id], start, end, config, now)
        for a, (start, end) in zip(arrivals, bounds, strict=True)
    ]


def _after_upsert(
    session: Session,
    arrival: Arrival,
    row: Any,
    start: datetime,
    end: datetime,
    config: TokenizationConfig,
    now: datetime,
) -> Settled:
    meter, at = arrival.meter, arrival.at
    readings: list[int] = []
    late = row.status == IntervalStatus.CLOSED
    # Intervals are only ever created with one sample, so a count of one is a new row.
    opened = row.sample_count == 1
    status = row.status
    before = None
    if late:
        interval = session.get(SettlementInterval, row.id, populate_existing=True)
        assert interval is not None
        readings.extend(_adjust(session, meter, interval, config, now))
    elif opened:
        before = session.scalar(
            select(func.max(SettlementInterval.interval_start)).where(
                SettlementInterval.meter_id == meter.id,
                SettlementInterval.interval_start < start,
            )
        )
        # A new interval behind the meter's latest sample (a late one) is complete
        # already, and closing it may complete earlier ones. An interval that was
        # open before has no later sample: that sample would have closed it (and
        # every open one before it) when it arrived, so there is nothing to close.
        stored = session.scalar(
            select(func.max(TelemetrySample.sample_timestamp)).where(
                TelemetrySample.meter_id == meter.id
            )
        )
        latest = max(stored or at, at)
        readings.extend(_close_completed(session, meter, latest, config, now))
        if end <= latest:
            status = IntervalStatus.CLOSED.value
    return Settled(start, end, status, late, tuple(readings), before, opened)


_T = SettlementInterval.__table__
_UPSERTS: dict[str, Any] = {}


def _upsert(session: Session) -> Any:
    """INSERT the interval with this sample, or add the sample to it, RETURNING its state."""
    dialect = session.get_bind().dialect.name
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert_ = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
        # On the table, not the mapped class: a Core statement, without the ORM's
        # bulk-insert machinery (about 3 ms of CPU per statement, measured with cProfile).
        values = insert_(_T).values(
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
        statement = _UPSERTS[dialect] = values.on_conflict_do_update(
            index_elements=["meter_id", "interval_start"],
            set_={
                "net_micro": _T.c.net_micro + added.net_micro,
                "generated_micro": _T.c.generated_micro + added.generated_micro,
                "consumed_micro": _T.c.consumed_micro + added.consumed_micro,
                "sample_count": _T.c.sample_count + 1,
            },
        ).returning(_T.c.id, _T.c.meter_id, _T.c.status, _T.c.sample_count)
    return statement


def _close_completed(
    session: Session, meter: MeterRef, latest: datetime, config: TokenizationConfig, now: datetime
) -> list[int]:
    """Close the meter's open intervals that a sample at or after their end completes."""
    due = session.scalars(
        select(SettlementInterval)
        .where(
            SettlementInterval.meter_id == meter.id,
            SettlementInterval.status == IntervalStatus.OPEN.value,
            SettlementInterval.interval_end <= latest,
        )
        .order_by(SettlementInterval.interval_start)
        .with_for_update()
        # Samples add to intervals in SQL: what this session loaded before may be stale.
        .execution_options(populate_existing=True)
    ).all()
    return [r for interval in due for r in _close(session, meter, interval, "sample", config, now)]


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
