"""Settlement of telemetry into intervals, and of intervals into mintable readings.

Public API: `interval_bounds`, `settle_sample` (in the acceptance transaction of a
sample), `close_due_intervals` (the scheduler's grace job), `MeterRef`, `meter_ref`.
"""

from core.settlement.intervals import (
    MeterRef,
    Settled,
    close_due_intervals,
    interval_bounds,
    meter_ref,
    settle_sample,
)

__all__ = [
    "MeterRef",
    "Settled",
    "close_due_intervals",
    "interval_bounds",
    "meter_ref",
    "settle_sample",
]
