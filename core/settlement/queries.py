"""Read models of settlement: a meter's recent intervals, net ≤ 0 included (shown, not minted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import SettlementInterval
from core.meters import get_meter


@dataclass(frozen=True, slots=True)
class IntervalView:
    interval_start: datetime
    interval_end: datetime
    status: str
    sample_count: int
    net_micro: int
    generated_micro: int
    consumed_micro: int
    settled_micro: int  # made mintable (surplus and adjustments)
    closed_by: str | None
    closed_at: datetime | None


def recent_intervals(session: Session, serial: str, limit: int = 96) -> list[IntervalView]:
    """The meter's latest intervals, newest first (96: a day of 15-minute intervals)."""
    meter = get_meter(session, serial)
    rows = session.scalars(
        select(SettlementInterval)
        .where(SettlementInterval.meter_id == meter.id)
        .order_by(SettlementInterval.interval_start.desc())
        .limit(limit)
    )
    return [
        IntervalView(
            r.interval_start,
            r.interval_end,
            r.status,
            r.sample_count,
            r.net_micro,
            r.generated_micro,
            r.consumed_micro,
            r.settled_micro,
            r.closed_by,
            r.closed_at,
        )
        for r in rows
    ]
