"""The simulated physics: sun by local time, export only, deterministic, 6 decimals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from simulator.energy import Site, export_kwh, solar_kw

BANGKOK = Site("Chiang Mai", 7, 5.0)
NOON_THERE = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)


def test_no_sun_at_night() -> None:
    night = NOON_THERE + timedelta(hours=12)
    assert solar_kw(BANGKOK, "M", night) == 0.0
    assert export_kwh(BANGKOK, "M", night, night + timedelta(minutes=15)) == 0


def test_midday_exports_a_plausible_amount() -> None:
    kwh = export_kwh(BANGKOK, "M", NOON_THERE, NOON_THERE + timedelta(minutes=15))
    assert Decimal("0.05") < kwh < Decimal("1.25")  # at most 5 kW for a quarter hour
    assert kwh == kwh.quantize(Decimal("0.000001"))


def test_the_same_meter_and_time_give_the_same_reading() -> None:
    window = (NOON_THERE, NOON_THERE + timedelta(minutes=15))
    assert export_kwh(BANGKOK, "M", *window) == export_kwh(BANGKOK, "M", *window)
    assert export_kwh(BANGKOK, "M", *window) != export_kwh(BANGKOK, "N", *window)


def test_some_demo_site_has_sun_at_every_hour() -> None:
    from simulator.fleet import DEMO_METERS

    for hour in range(24):
        at = datetime(2026, 11, 20, hour, 30, tzinfo=UTC)
        assert any(solar_kw(m.site, m.serial, at) > 1.0 for m in DEMO_METERS), hour
