"""Simulated energy: rooftop solar by time of day and weather, household consumption,
and what the meter reports, the energy exported to the grid.

Deterministic: the weather of a given meter and hour, and the noise of a given
minute, come from RNGs seeded by (serial, time), so a restarted simulator
recomputes exactly the readings it sent before and the API answers them as
resends instead of storing them twice.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

_STEP = timedelta(minutes=1)
_MICRO = Decimal("0.000001")


@dataclass(frozen=True)
class Site:
    """Where a meter is: the sun follows local time, so sites span the time zones."""

    name: str
    utc_offset_hours: float
    peak_kw: float
    base_load_kw: float = 0.35


def _local_hour(site: Site, at: datetime) -> float:
    local = at + timedelta(hours=site.utc_offset_hours)
    return local.hour + local.minute / 60 + local.second / 3600


def _cloud_cover(serial: str, at: datetime) -> float:
    """Sky clearness 0.25..1, changing smoothly from hour to hour."""
    hour = math.floor(at.timestamp() / 3600)
    start = random.Random(f"{serial}:sky:{hour}").uniform(0.25, 1.0)
    end = random.Random(f"{serial}:sky:{hour + 1}").uniform(0.25, 1.0)
    fraction = at.timestamp() / 3600 - hour
    return start + (end - start) * fraction


def solar_kw(site: Site, serial: str, at: datetime) -> float:
    hour = _local_hour(site, at)
    if not 6 <= hour <= 18:
        return 0.0
    elevation = math.sin(math.pi * (hour - 6) / 12)
    return site.peak_kw * elevation * _cloud_cover(serial, at)


def consumption_kw(site: Site, serial: str, at: datetime) -> float:
    hour = _local_hour(site, at)
    load = site.base_load_kw
    if 6.5 <= hour <= 9:  # breakfast
        load += 0.9
    if 17.5 <= hour <= 22:  # evening cooking, lights, air conditioning
        load += 1.4
    minute = math.floor(at.timestamp() / 60)
    return load * random.Random(f"{serial}:load:{minute}").uniform(0.8, 1.25)


def export_kwh(site: Site, serial: str, start: datetime, end: datetime) -> Decimal:
    """Energy fed into the grid in [start, end): ∫ max(0, solar − consumption) dt.

    Truncated to the meter's resolution of 1 Wh/1000 (6 decimals).
    """
    total, at = 0.0, start
    while at < end:
        step_end = min(at + _STEP, end)
        middle = at + (step_end - at) / 2
        surplus = solar_kw(site, serial, middle) - consumption_kw(site, serial, middle)
        total += max(0.0, surplus) * (step_end - at).total_seconds() / 3600
        at = step_end
    # Converting once from float is fine here: this is the meter's measurement,
    # and the 6-decimal string is what it signs and sends.
    return Decimal(repr(total)).quantize(_MICRO, rounding=ROUND_DOWN)
