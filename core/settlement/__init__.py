"""Settlement of telemetry into intervals, and of intervals into mintable readings.

Public API: `interval_bounds`, `settle_samples` / `settle_sample` (in the acceptance
transaction of samples), `close_due_intervals` (the scheduler's grace job), `Arrival`,
`MeterRef`, `meter_ref`.
"""

from core.settlement.intervals import (
    Arrival,
    MeterRef,
    Settled,
    close_due_intervals,
    interval_bounds,
    meter_ref,
    settle_sample,
    settle_samples,
)

__all__ = [
    "Arrival",
    "MeterRef",
    "Settled",
    "close_due_intervals",
    "interval_bounds",
    "meter_ref",
    "settle_sample",
    "settle_samples",
]
