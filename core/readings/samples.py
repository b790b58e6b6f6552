"""Storing a checked telemetry sample and settling it, in the acceptance transaction.

Every accepted sample is kept (generation, consumption, net, the registers), at
any cadence: there is no duplicate window, only UNIQUE(meter_id, sample_timestamp).
The same sample again (same instant, net and signature) is a resend; a different
one at the same instant is `duplicate_reading`. An encrypted frame's invocation
counter must exceed every counter the meter used before (`replayed_counter`).

What a sample adds to its interval depends on the meter's registration:
- tick_energy (GridTokenX's simulator): its signed net kWh;
- cumulative_registers: the change of its export minus import registers since the
  meter's previous sample, so a lost tick loses no energy. A register that went
  down is a reset: the sample is kept, noted `register_reset`, and adds nothing.
  A sample older than the meter's latest adds nothing either (`out_of_order`): the
  later sample's difference already holds its energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core import meter_health as health
from core.config import TokenizationConfig
from core.db.models import Meter, Reporting, TelemetrySample
from core.meter_health import Flag
from core.readings.errors import DuplicateReading, InvalidFormat, ReplayedCounter
from core.readings.identity import SubmittingMeter
from core.readings.rules import CheckedReading
from core.settlement import MeterRef, Settled, interval_bounds, settle_sample

REGISTER_RESET = health.REGISTER_RESET
OUT_OF_ORDER = "out_of_order"
_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


@dataclass(frozen=True, slots=True)
class SampleStored:
    id: int
    created: bool
    sample_timestamp: datetime
    settled: Settled | None = None  # None for a resend


def store_sample(
    session: Session,
    meter: SubmittingMeter,
    reading: CheckedReading,
    config: TokenizationConfig,
    now: datetime,
) -> SampleStored:
    """Store and settle one sample in the caller's transaction (which has touched, and
    on PostgreSQL locked, the meter's row). No commit. Raises DuplicateReading,
    ReplayedCounter or InvalidFormat before writing anything."""
    return _store(session, meter, reading, config, now)


def _store(
    session: Session,
    meter: SubmittingMeter,
    reading: CheckedReading,
    config: TokenizationConfig,
    now: datetime,
) -> SampleStored:
    sample = reading.sample
    assert sample is not None
    at = reading.reading_timestamp
    # The meter's settings and, for an encrypted frame, its last counter: one statement.
    last_counter = (
        select(func.max(TelemetrySample.counter))
        .where(TelemetrySample.meter_id == meter.id)
        .scalar_subquery()
        if sample.counter is not None
        else None
    )
    reporting, capacity_kw, last = session.execute(
        select(Meter.reporting, Meter.capacity_kw, last_counter).where(Meter.id == meter.id)
    ).one()
    # First: an encrypted frame sent again is a replay (their bridge: 409), even whole.
    if sample.counter is not None and last is not None and sample.counter <= last:
        raise ReplayedCounter(
            f"invocation counter {sample.counter} is not above {last}, "
            "the meter's last; a replayed frame"
        )
    energy, note = _energy(session, meter.id, reading, reporting)
    start, _ = interval_bounds(at, config.settlement_interval_secs)
    values = {
        "meter_id": meter.id,
        "sample_timestamp": at,
        "interval_start": start,
        "submitted_at": now,
        "net_micro": reading.kwh_micro,
        "energy_micro": energy,
        "generated_micro": sample.generated_micro,
        "consumed_micro": sample.consumed_micro,
        "import_micro": sample.import_micro,
        "export_micro": sample.export_micro,
        "registers": sample.registers,
        "signature": reading.signature,
        "counter": sample.counter,
        "late": False,
        "note": note,
    }
    # One statement in the common case: the same instant again inserts nothing.
    insert_ = _INSERTS[session.get_bind().dialect.name]
    sample_id = session.scalar(
        # On the table: a Core statement, not the ORM's bulk-insert path.
        insert_(TelemetrySample.__table__)
        .values(values)
        .on_conflict_do_nothing(index_elements=["meter_id", "sample_timestamp"])
        .returning(TelemetrySample.__table__.c.id)
    )
    if sample_id is None:
        known = session.execute(
            select(TelemetrySample.id, TelemetrySample.net_micro, TelemetrySample.signature).where(
                TelemetrySample.meter_id == meter.id, TelemetrySample.sample_timestamp == at
            )
        ).one()
        if (known.net_micro, known.signature) == (reading.kwh_micro, reading.signature):
            return SampleStored(known.id, False, at)
        raise DuplicateReading(
            f"meter already has sample {known.id} at {at.isoformat()} with another value",
            known.id,
        )
    assert sample_id is not None
    ref = MeterRef(meter.id, meter.serial, meter.owner_id, meter.wallet_address, capacity_kw)
    settled = settle_sample(
        session,
        ref,
        at,
        energy_micro=energy,
        generated_micro=sample.generated_micro or 0,
        consumed_micro=sample.consumed_micro or 0,
        config=config,
        now=now,
    )
    _flag(session, meter, at, note, settled, config, now)
    if settled.late:
        session.execute(
            TelemetrySample.__table__.update()
            .where(TelemetrySample.__table__.c.id == sample_id)
            .values(late=True)
        )
    return SampleStored(sample_id, True, at, settled)


def _flag(
    session: Session,
    meter: SubmittingMeter,
    at: datetime,
    note: str | None,
    settled: Settled,
    config: TokenizationConfig,
    now: datetime,
) -> None:
    """Tell staff (core.meter_health) what this sample shows wrong, as it arrives."""
    flags = []
    if note == REGISTER_RESET:
        flags.append(Flag(health.REGISTER_RESET, {"sample_at": at.isoformat()}))
    ahead = (at - now).total_seconds()
    if ahead > health.CLOCK_AHEAD_SECS:
        flags.append(Flag(health.CLOCK_AHEAD, {"sample_at": at.isoformat(), "ahead_secs": ahead}))
    step = timedelta(seconds=config.settlement_interval_secs)
    if settled.opened_after is not None and settled.interval_start - settled.opened_after > step:
        gap = (settled.interval_start - settled.opened_after) // step - 1
        flags.append(
            Flag(
                health.MISSING_INTERVALS,
                {
                    "count": gap,
                    "after": settled.opened_after.isoformat(),
                    "before": settled.interval_start.isoformat(),
                },
            )
        )
    for flag in flags:
        health.raise_flag(session, serial=meter.serial, owner_id=meter.owner_id, flag=flag, now=now)


def _energy(
    session: Session, meter_id: int, reading: CheckedReading, reporting: str
) -> tuple[int, str | None]:
    """What this sample adds to its interval, and why it adds nothing when it does not."""
    if reporting != Reporting.CUMULATIVE:
        return reading.kwh_micro, None
    sample = reading.sample
    assert sample is not None
    if sample.import_micro is None or sample.export_micro is None:
        raise InvalidFormat(
            "this meter reports cumulative registers: the payload needs both "
            "1.1.1.8.0.255 (import Wh) and 1.1.2.8.0.255 (export Wh)",
            field="payload",
        )
    latest = session.execute(
        select(
            TelemetrySample.sample_timestamp,
            TelemetrySample.import_micro,
            TelemetrySample.export_micro,
        )
        .where(TelemetrySample.meter_id == meter_id)
        .order_by(TelemetrySample.sample_timestamp.desc())
        .limit(1)
    ).one_or_none()
    if latest is None:
        return 0, None  # the first sample is the baseline
    if latest.sample_timestamp > reading.reading_timestamp:
        return 0, OUT_OF_ORDER
    imported = sample.import_micro - (latest.import_micro or 0)
    exported = sample.export_micro - (latest.export_micro or 0)
    if imported < 0 or exported < 0:
        return 0, REGISTER_RESET
    return exported - imported, None
