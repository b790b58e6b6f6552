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

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, func, null, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core import meter_health as health
from core.config import TokenizationConfig
from core.db.models import Meter, Reporting, TelemetrySample
from core.db.params import any_of
from core.db.statements import per_dialect
from core.meter_health import Flag
from core.readings.errors import DuplicateReading, InvalidFormat, ReadingRejected, ReplayedCounter
from core.readings.identity import SubmittingMeter
from core.readings.rules import CheckedReading
from core.settlement import Arrival, MeterRef, Settled, interval_bounds, settle_samples

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
    """`store_samples` of one sample: its outcome, or its refusal raised."""
    [outcome] = store_samples(session, [(meter, reading)], config, now)
    if isinstance(outcome, ReadingRejected):
        raise outcome
    return outcome


def store_samples(
    session: Session,
    samples: Sequence[tuple[SubmittingMeter, CheckedReading]],
    config: TokenizationConfig,
    now: datetime,
) -> list[SampleStored | ReadingRejected]:
    """Store and settle samples in the caller's transaction (which has touched, and on
    PostgreSQL locked, their meters' rows). No commit. Each sample's outcome, in order,
    or why it was refused (DuplicateReading, ReplayedCounter, InvalidFormat), with
    nothing of it written.

    Set-based in rounds: round k holds the k-th sample of each meter, in arrival
    order, so a meter's samples are judged one after the other exactly as if sent
    alone (its counter, its interval, its latest registers), while the meters of a
    round share each statement: one for their settings and last counters, one
    INSERT, one interval upsert.
    """
    outcomes: list[SampleStored | ReadingRejected | None] = [None] * len(samples)
    rounds: list[list[int]] = []
    seen: Counter[int] = Counter()
    for position, (meter, _) in enumerate(samples):
        depth = seen[meter.id]
        seen[meter.id] += 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(position)
    for positions in rounds:
        stored = _store_round(session, [samples[p] for p in positions], config, now)
        for position, outcome in zip(positions, stored, strict=True):
            outcomes[position] = outcome
    return outcomes  # type: ignore[return-value]


def _settings(
    session: Session, meter_ids: list[int], counters: bool
) -> dict[int, tuple[str, Any, int | None]]:
    """Per meter: its reporting, its capacity and (for encrypted frames) its last counter."""
    statement = _settings_statement(session.get_bind().dialect.name, counters)
    rows = session.execute(statement, {"meter_ids": meter_ids})
    return {meter_id: (reporting, capacity, last) for meter_id, reporting, capacity, last in rows}


@per_dialect
def _settings_statement(dialect: str, counters: bool) -> Any:
    """core.db.params: the meter ids as one array on PostgreSQL."""
    last_counter = (
        select(func.max(_SAMPLES.c.counter))
        .where(_SAMPLES.c.meter_id == Meter.id)
        .scalar_subquery()
        if counters
        else null()
    )
    return select(Meter.id, Meter.reporting, Meter.capacity_kw, last_counter).where(
        any_of(Meter.id, "meter_ids", Integer(), dialect)
    )


def _store_round(
    session: Session,
    samples: list[tuple[SubmittingMeter, CheckedReading]],
    config: TokenizationConfig,
    now: datetime,
) -> list[SampleStored | ReadingRejected]:
    """Samples of distinct meters: one settings query, one INSERT, one settlement upsert."""
    counters = any(r.sample is not None and r.sample.counter is not None for _, r in samples)
    settings = _settings(session, sorted({meter.id for meter, _ in samples}), counters)
    outcomes: list[SampleStored | ReadingRejected | None] = [None] * len(samples)
    rows: list[dict[str, Any]] = []
    candidates: list[tuple[int, SubmittingMeter, CheckedReading, str | None]] = []
    for position, (meter, reading) in enumerate(samples):
        sample = reading.sample
        assert sample is not None
        reporting, _, last = settings[meter.id]
        try:
            # First: an encrypted frame sent again is a replay (their bridge: 409), even whole.
            if sample.counter is not None and last is not None and sample.counter <= last:
                raise ReplayedCounter(
                    f"invocation counter {sample.counter} is not above {last}, "
                    "the meter's last; a replayed frame"
                )
            energy, note = _energy(session, meter.id, reading, reporting)
        except (ReplayedCounter, InvalidFormat) as error:
            outcomes[position] = error
            continue
        rows.append(_row(meter, reading, energy, note, config, now))
        candidates.append((position, meter, reading, note))
    # One statement: the same instant again inserts nothing (then judged below).
    inserted = _insert_samples(session, rows) if rows else {}
    arrivals: list[tuple[int, SubmittingMeter, CheckedReading, str | None, int, Arrival]] = []
    for (position, meter, reading, note), row in zip(candidates, rows, strict=True):
        sample_id = inserted.get(meter.id)
        if sample_id is None:
            outcomes[position] = _resent_or_duplicate(session, meter, reading)
            continue
        sample = reading.sample
        assert sample is not None
        ref = MeterRef(
            meter.id, meter.serial, meter.owner_id, meter.wallet_address, settings[meter.id][1]
        )
        arrival = Arrival(
            ref,
            reading.reading_timestamp,
            row["energy_micro"],
            sample.generated_micro or 0,
            sample.consumed_micro or 0,
        )
        arrivals.append((position, meter, reading, note, sample_id, arrival))
    settled_all = settle_samples(session, [a[-1] for a in arrivals], config=config, now=now)
    for (position, meter, reading, note, sample_id, _), settled in zip(
        arrivals, settled_all, strict=True
    ):
        at = reading.reading_timestamp
        _flag(session, meter, at, note, settled, config, now)
        if settled.late:
            session.execute(_SAMPLES.update().where(_SAMPLES.c.id == sample_id).values(late=True))
        outcomes[position] = SampleStored(sample_id, True, at, settled)
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def _row(
    meter: SubmittingMeter,
    reading: CheckedReading,
    energy: int,
    note: str | None,
    config: TokenizationConfig,
    now: datetime,
) -> dict[str, Any]:
    sample = reading.sample
    assert sample is not None
    at = reading.reading_timestamp
    start, _ = interval_bounds(at, config.settlement_interval_secs)
    return {
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


_SAMPLES = TelemetrySample.__table__
# PostgreSQL: every row of a round as one JSON text (like core.readings.writes), so the
# statement's text is the same for any number of rows. A multi-row VALUES list is new
# text for each row count: psycopg cannot cache it and re-splits it in Python, which
# cost more CPU than the insert (py-spy of the DLMS bench).
_INSERT_SAMPLES_JSON = text(
    "INSERT INTO telemetry_samples (meter_id, sample_timestamp, interval_start,"
    " submitted_at, net_micro, energy_micro, generated_micro, consumed_micro,"
    " import_micro, export_micro, registers, signature, counter, late, note)"
    " SELECT r.meter_id, r.sample_timestamp, r.interval_start,"
    " CAST(:submitted_at AS TIMESTAMPTZ), r.net_micro, r.energy_micro, r.generated_micro,"
    " r.consumed_micro, r.import_micro, r.export_micro, r.registers, r.signature,"
    " r.counter, false, r.note"
    " FROM json_to_recordset(CAST(:rows AS JSON)) AS r(meter_id INTEGER,"
    " sample_timestamp TIMESTAMPTZ, interval_start TIMESTAMPTZ, net_micro BIGINT,"
    " energy_micro BIGINT, generated_micro BIGINT, consumed_micro BIGINT,"
    " import_micro BIGINT, export_micro BIGINT, registers JSON, signature VARCHAR,"
    " counter BIGINT, note VARCHAR)"
    " ON CONFLICT (meter_id, sample_timestamp) DO NOTHING"
    " RETURNING id, meter_id"
)
_JSON_FIELDS = (
    "meter_id",
    "net_micro",
    "energy_micro",
    "generated_micro",
    "consumed_micro",
    "import_micro",
    "export_micro",
    "registers",
    "signature",
    "counter",
    "note",
)


def _insert_samples(session: Session, rows: list[dict[str, Any]]) -> dict[int, int]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: meter id -> new sample id (one row per
    meter; a meter absent from the answer already has a sample at that instant)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        document = json.dumps(
            [
                {
                    **{name: row[name] for name in _JSON_FIELDS},
                    "sample_timestamp": row["sample_timestamp"].isoformat(),
                    "interval_start": row["interval_start"].isoformat(),
                }
                for row in rows
            ]
        )
        result = session.execute(
            _INSERT_SAMPLES_JSON, {"rows": document, "submitted_at": rows[0]["submitted_at"]}
        )
        return {meter_id: sample_id for sample_id, meter_id in result}
    result = session.execute(_sample_insert(dialect), rows)
    return {meter_id: sample_id for sample_id, meter_id in result}


@per_dialect
def _sample_insert(dialect: str) -> Any:
    # On the table: a Core statement, not the ORM's bulk-insert path.
    return (
        _INSERTS[dialect](_SAMPLES)
        .on_conflict_do_nothing(index_elements=["meter_id", "sample_timestamp"])
        .returning(_SAMPLES.c.id, _SAMPLES.c.meter_id)
    )


def _resent_or_duplicate(
    session: Session, meter: SubmittingMeter, reading: CheckedReading
) -> SampleStored | ReadingRejected:
    """The meter has a sample at this instant: the same one again is a resend."""
    at = reading.reading_timestamp
    known = session.execute(
        select(TelemetrySample.id, TelemetrySample.net_micro, TelemetrySample.signature).where(
            TelemetrySample.meter_id == meter.id, TelemetrySample.sample_timestamp == at
        )
    ).one()
    if (known.net_micro, known.signature) == (reading.kwh_micro, reading.signature):
        return SampleStored(known.id, False, at)
    return DuplicateReading(
        f"meter already has sample {known.id} at {at.isoformat()} with another value",
        known.id,
    )


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
