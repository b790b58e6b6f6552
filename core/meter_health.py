"""Data quality of a meter's telemetry: what looks wrong, with the evidence.

Flags (each with the facts that raised it):

- `missing_intervals`: settlement intervals with no sample between the meter's
  first and last interval in the window (a meter, or its head-end, went quiet);
- `register_reset`: a cumulative register went down (core.readings.samples);
- `clock_ahead`: samples stamped later than the server received them (by more
  than CLOCK_AHEAD_SECS; beyond TOKENIZATION_MAX_CLOCK_SKEW_SECS they are refused);
- `bad_signatures`: SIGNATURE_RUN or more refusals for an invalid signature within
  the hour (a wrong key, a forger, or a firmware that signs another message).

`meter_health` computes them on demand (GET /api/admin/meters/{serial}/health);
`raise_flag` writes a `meter_flagged` event (staff and the owner) when ingest sees
one happen, at most once per meter and flag per FLAG_QUIET.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import Event, SettlementInterval, TelemetrySample
from core.events import EventType, publish
from core.meters import get_meter

MISSING_INTERVALS = "missing_intervals"
REGISTER_RESET = "register_reset"
CLOCK_AHEAD = "clock_ahead"
BAD_SIGNATURES = "bad_signatures"
CLOCK_AHEAD_SECS = 5
SIGNATURE_RUN = 3
FLAG_QUIET = timedelta(hours=1)
_EVIDENCE_ITEMS = 20
_CLOCK_SAMPLES = 2000  # the newest samples judged for the clock (a few hours at 5 s)


@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MeterHealth:
    serial: str
    window_from: datetime
    window_to: datetime
    flags: list[Flag] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.flags


def meter_health(
    session: Session, serial: str, config: TokenizationConfig, now: datetime, hours: int = 24
) -> MeterHealth:
    meter = get_meter(session, serial)
    since = now - timedelta(hours=hours)
    flags = [
        flag
        for flag in (
            _missing(session, meter.id, since, config),
            _resets(session, meter.id, since),
            _clock(session, meter.id, since),
            _signatures(session, meter.serial, now),
        )
        if flag is not None
    ]
    return MeterHealth(meter.serial, since, now, flags)


def _missing(
    session: Session, meter_id: int, since: datetime, config: TokenizationConfig
) -> Flag | None:
    starts = list(
        session.scalars(
            select(SettlementInterval.interval_start)
            .where(
                SettlementInterval.meter_id == meter_id,
                SettlementInterval.interval_start >= since,
            )
            .order_by(SettlementInterval.interval_start)
        )
    )
    if len(starts) < 2:
        return None
    step = timedelta(seconds=config.settlement_interval_secs)
    present, missing, at = set(starts), [], starts[0]
    while at < starts[-1]:
        if at not in present:
            missing.append(at)
        at += step
    if not missing:
        return None
    return Flag(
        MISSING_INTERVALS,
        {"count": len(missing), "intervals": [m.isoformat() for m in missing[:_EVIDENCE_ITEMS]]},
    )


def _resets(session: Session, meter_id: int, since: datetime) -> Flag | None:
    rows = session.execute(
        select(TelemetrySample.id, TelemetrySample.sample_timestamp)
        .where(
            TelemetrySample.meter_id == meter_id,
            TelemetrySample.sample_timestamp >= since,
            TelemetrySample.note == REGISTER_RESET,
        )
        .order_by(TelemetrySample.sample_timestamp)
    ).all()
    if not rows:
        return None
    return Flag(
        REGISTER_RESET,
        {
            "count": len(rows),
            "samples": [{"id": i, "at": at.isoformat()} for i, at in rows[:_EVIDENCE_ITEMS]],
        },
    )


def _clock(session: Session, meter_id: int, since: datetime) -> Flag | None:
    # The newest samples, compared here: time arithmetic in SQL differs per database.
    received = session.execute(
        select(TelemetrySample.sample_timestamp, TelemetrySample.submitted_at)
        .where(TelemetrySample.meter_id == meter_id, TelemetrySample.submitted_at >= since)
        .order_by(TelemetrySample.submitted_at.desc())
        .limit(_CLOCK_SAMPLES)
    ).all()
    tolerance = timedelta(seconds=CLOCK_AHEAD_SECS)
    rows = [(at, got) for at, got in received if at > got + tolerance]
    if not rows:
        return None
    worst = max((at - got).total_seconds() for at, got in rows)
    return Flag(
        CLOCK_AHEAD,
        {
            "samples": len(rows),
            "max_ahead_secs": worst,
            "latest": rows[0][0].isoformat(),
            "received": rows[0][1].isoformat(),
        },
    )


def _signature_refusals(session: Session, serial: str, since: datetime) -> list[datetime]:
    return list(
        session.scalars(
            select(Event.created_at)
            .where(
                Event.type == EventType.METER_READING_VALIDATION_FAILED.value,
                Event.created_at >= since,
                Event.payload["meter_serial"].as_string() == serial,
                Event.payload["error_code"].as_string() == "invalid_signature",
            )
            .order_by(Event.created_at)
        )
    )


def _signatures(session: Session, serial: str, now: datetime) -> Flag | None:
    times = _signature_refusals(session, serial, now - timedelta(hours=1))
    if len(times) < SIGNATURE_RUN:
        return None
    return Flag(
        BAD_SIGNATURES,
        {"count": len(times), "first": times[0].isoformat(), "last": times[-1].isoformat()},
    )


def raise_flag(
    session: Session,
    *,
    serial: str,
    owner_id: int | None,
    flag: Flag,
    now: datetime,
) -> bool:
    """Write `meter_flagged` unless the same flag was raised within FLAG_QUIET. No commit."""
    recent = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(
            Event.type == EventType.METER_FLAGGED.value,
            Event.created_at >= now - FLAG_QUIET,
            Event.payload["meter_serial"].as_string() == serial,
            Event.payload["flag"].as_string() == flag.name,
        )
    )
    if recent:
        return False
    payload = {"meter_serial": serial, "flag": flag.name, "evidence": flag.evidence}
    publish(session, EventType.METER_FLAGGED, payload, user_id=owner_id, at=now)
    return True


def signature_run_flag(session: Session, serial: str, now: datetime) -> Flag | None:
    """The bad-signature flag if this refusal completes a run (the refusal's event written)."""
    return _signatures(session, serial, now)
