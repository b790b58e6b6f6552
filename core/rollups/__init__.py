"""Rollups of meter_readings per 15 minutes and per day: what pages and stats read.

Kept by database triggers (migration 0204) in the transaction of every write, so no
writer can miss them; `source.rollup_rows` is what readers select from, `fold` moves
PostgreSQL's pending deltas in. docs/ARCHITECTURE.md "Rollups" says why.
"""

from core.rollups.fold import fold_deltas
from core.rollups.source import (
    ACCEPTED,
    DAY,
    EVERY,
    FIFTEEN_MINUTES,
    Level,
    accepted,
    level_for,
    measure,
    regroup,
    rollup_rows,
)

__all__ = [
    "ACCEPTED",
    "DAY",
    "EVERY",
    "FIFTEEN_MINUTES",
    "Level",
    "accepted",
    "fold_deltas",
    "level_for",
    "measure",
    "regroup",
    "rollup_rows",
]
