"""Is a reading's energy physically possible, and is it recent enough to mint unattended?

A signed reading proves who sent it, not that the energy exists: a meter (or its
stolen key) can sign 100 kWh every 15 minutes back-dated over a week. These rules
decide which accepted readings wait in review for an admin instead of minting:

- energy per elapsed time: a reading's kWh cannot exceed what the meter's rated
  power delivers since the meter's previous reading, with 10 % tolerance
  (`energy_problem`). The rating is the meter's own capacity when it carries one,
  else TOKENIZATION_MAX_KW_PER_METER. Every door calls this one function;
- back-fill horizon: a reading older than TOKENIZATION_MAX_BACKFILL_HOURS waits
  (`backfill_problem`); TOKENIZATION_READING_MAX_AGE_DAYS still refuses older ones;
- the review threshold TOKENIZATION_REVIEW_THRESHOLD_KWH (`threshold_problem`);
- a batch holding an implausible reading is held as a whole (`hold_together`):
  the rest of it comes from the same suspect source.

`review_hold` applies them in that order to one reading.

Pure: the caller finds the previous reading's time (core.readings.store).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from core.config import TokenizationConfig
from core.units import format_kwh

TOLERANCE = Decimal("1.1")
_MICRO = Decimal("0.000001")
_MS_PER_HOUR = 3_600_000


def energy_ceiling_kwh(
    elapsed: timedelta, capacity_kw: Decimal | None, config: TokenizationConfig
) -> Decimal:
    """The most energy a meter rated `capacity_kw` (None: the configured default) can
    deliver in `elapsed`, tolerance included; exact (whole milliseconds)."""
    rated = capacity_kw if capacity_kw is not None else config.max_kw_per_meter
    hours = Decimal(elapsed // timedelta(milliseconds=1)) / _MS_PER_HOUR
    return rated * hours * TOLERANCE


def energy_problem(
    kwh: Decimal,
    elapsed: timedelta | None,
    *,
    capacity_kw: Decimal | None,
    config: TokenizationConfig,
) -> str | None:
    """Why `kwh` over `elapsed` since the meter's previous reading is implausible.

    `elapsed` None (the meter's first reading) cannot be judged by rate; the
    threshold and the per-reading maximum still apply to it.
    """
    if elapsed is None:
        return None
    ceiling = energy_ceiling_kwh(elapsed, capacity_kw, config)
    if kwh <= ceiling:
        return None
    rated = capacity_kw if capacity_kw is not None else config.max_kw_per_meter
    source = "its rated capacity" if capacity_kw is not None else "TOKENIZATION_MAX_KW_PER_METER"
    return (
        f"implausible energy: {format_kwh(kwh)} kWh in {_duration(elapsed)} since the "
        f"meter's previous reading is more than {rated} kW ({source}) × time × {TOLERANCE} "
        f"= {format_kwh(ceiling.quantize(_MICRO, rounding=ROUND_FLOOR))} kWh"
    )


def backfill_problem(
    reading_timestamp: datetime, now: datetime, config: TokenizationConfig
) -> str | None:
    horizon = timedelta(hours=config.max_backfill_hours)
    if reading_timestamp >= now - horizon:
        return None
    return (
        f"back-filled: {_duration(now - reading_timestamp)} old, beyond the "
        f"{config.max_backfill_hours} h back-fill horizon (TOKENIZATION_MAX_BACKFILL_HOURS)"
    )


def threshold_problem(kwh: Decimal, config: TokenizationConfig) -> str | None:
    threshold = config.review_threshold_kwh
    if threshold is None or kwh <= threshold:
        return None
    return f"above the review threshold: {format_kwh(kwh)} kWh > {threshold} kWh"


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a reading waits for an admin; `implausible` holds the rest of its batch too."""

    reason: str
    implausible: bool = False


def standing_hold(
    kwh: Decimal, reading_timestamp: datetime, *, config: TokenizationConfig, now: datetime
) -> Hold | None:
    """What the reading alone says: too old to mint unattended, or above the threshold."""
    reason = backfill_problem(reading_timestamp, now, config) or threshold_problem(kwh, config)
    return Hold(reason) if reason else None


def energy_hold(
    kwh: Decimal,
    reading_timestamp: datetime,
    previous: datetime | None,
    *,
    capacity_kw: Decimal | None,
    config: TokenizationConfig,
) -> Hold | None:
    """What the meter's previous reading says: more energy than the meter can deliver."""
    elapsed = None if previous is None else reading_timestamp - previous
    reason = energy_problem(kwh, elapsed, capacity_kw=capacity_kw, config=config)
    return Hold(reason, implausible=True) if reason else None


def review_hold(
    kwh: Decimal,
    reading_timestamp: datetime,
    previous: datetime | None,
    *,
    capacity_kw: Decimal | None,
    config: TokenizationConfig,
    now: datetime,
) -> Hold | None:
    """Every rule above for one reading, implausible energy first; None: it may mint."""
    return energy_hold(
        kwh, reading_timestamp, previous, capacity_kw=capacity_kw, config=config
    ) or standing_hold(kwh, reading_timestamp, config=config, now=now)


def hold_together(holds: Sequence[Hold | None]) -> list[Hold | None]:
    """A batch with an implausible reading is held whole, each reading saying why.

    A back-filled or large reading alone does not hold its batch: a meter back
    online after days sends old and new readings together, and the new ones may mint.
    """
    implausible = [hold for hold in holds if hold is not None and hold.implausible]
    if not implausible:
        return list(holds)
    together = Hold(
        f"held with its batch: {len(implausible)} of {len(holds)} readings are implausible "
        f"(first: {implausible[0].reason})",
        implausible=True,
    )
    return [hold or together for hold in holds]


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    return f"{seconds / 3600:.1f} h"
