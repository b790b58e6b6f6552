"""Readings and micro-kWh per meter from any instant on, exact, without scanning history.

[since, next 15-minute edge) from the rows (at most 15 minutes of them), then whole
15-minute buckets up to the next UTC midnight, then whole days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading
from core.rollups.source import DAY, EVERY, FIFTEEN_MINUTES, measure, rollup_rows

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ceil(moment: datetime, size: int) -> int:
    seconds = (moment - EPOCH) // timedelta(microseconds=1)
    step = size * 10**6
    return -(-seconds // step) * size


def per_meter_since(
    session: Session, since: datetime, meter_ids: Collection[int] | None = None
) -> dict[int, tuple[int, int]]:
    """meter id -> (readings, micro-kWh) of every status with reading_timestamp >= since,
    of every meter or of `meter_ids` only (a page of the fleet table)."""
    quarter, midnight = _ceil(since, FIFTEEN_MINUTES.bucket_secs), _ceil(since, DAY.bucket_secs)
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    raw = (
        select(
            MeterReading.meter_id, func.count(), func.coalesce(func.sum(MeterReading.kwh_micro), 0)
        )
        .where(
            MeterReading.reading_timestamp >= since,
            MeterReading.reading_timestamp < EPOCH + timedelta(seconds=quarter),
        )
        .group_by(MeterReading.meter_id)
    )
    if meter_ids is not None:
        raw = raw.where(MeterReading.meter_id.in_(list(meter_ids)))
    parts = [raw]
    for level, low, high in ((FIFTEEN_MINUTES, quarter, midnight), (DAY, midnight, None)):
        rows = rollup_rows(level)
        statement = select(rows.c.meter_id, measure(rows, "n", EVERY), measure(rows, "kwh", EVERY))
        statement = statement.where(rows.c.bucket >= low)
        if high is not None:
            statement = statement.where(rows.c.bucket < high)
        if meter_ids is not None:
            statement = statement.where(rows.c.meter_id.in_(list(meter_ids)))
        parts.append(statement.group_by(rows.c.meter_id))
    for statement in parts:
        for meter_id, count, kwh in session.execute(statement):
            totals[int(meter_id)][0] += int(count)
            totals[int(meter_id)][1] += int(kwh)
    return {meter: (count, kwh) for meter, (count, kwh) in totals.items() if count}
