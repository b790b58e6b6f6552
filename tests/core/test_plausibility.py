"""The plausibility rules, pure: ceilings checked against a worked table in integers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.config import TokenizationConfig
from core.readings.plausibility import (
    Hold,
    energy_ceiling_kwh,
    hold_together,
    review_hold,
)
from tests.factories import NOW

CONFIG = TokenizationConfig(max_kw_per_meter=Decimal(50), max_backfill_hours=48)


@pytest.mark.parametrize(
    ("elapsed", "capacity_kw", "ceiling_micro_kwh"),
    [
        # rated kW × hours × 1.1, in micro-kWh, worked by hand:
        (timedelta(minutes=15), None, 13_750_000),  # 50 × 0.25 × 1.1 = 13.75
        (timedelta(hours=1), Decimal("7.5"), 8_250_000),  # 7.5 × 1 × 1.1 = 8.25
        (timedelta(seconds=5), Decimal(5), 7_638),  # 5 × 5/3600 × 1.1 = 0.0076388...
        (timedelta(milliseconds=1), Decimal(3600), 1_100),  # 3600 × 1/3.6e6 × 1.1 = 0.0011
    ],
)
def test_the_energy_ceiling_is_rated_power_times_time_with_ten_percent(
    elapsed: timedelta, capacity_kw: Decimal | None, ceiling_micro_kwh: int
) -> None:
    ceiling = energy_ceiling_kwh(elapsed, capacity_kw, CONFIG)
    assert int(ceiling * 1_000_000) == ceiling_micro_kwh


def test_a_reading_at_the_ceiling_mints_and_one_micro_kwh_more_waits() -> None:
    at, previous = NOW - timedelta(hours=1), NOW - timedelta(hours=1, minutes=15)
    assert review_hold(Decimal("13.75"), at, previous, capacity_kw=None, config=CONFIG,
                       now=NOW) is None  # fmt: skip
    hold = review_hold(Decimal("13.750001"), at, previous, capacity_kw=None, config=CONFIG,
                       now=NOW)  # fmt: skip
    assert hold is not None and hold.implausible
    assert "TOKENIZATION_MAX_KW_PER_METER" in hold.reason and "13.750000 kWh" in hold.reason


def test_a_meter_with_its_own_capacity_is_judged_by_it() -> None:
    at, previous = NOW - timedelta(hours=1), NOW - timedelta(hours=2)
    hold = review_hold(Decimal(9), at, previous, capacity_kw=Decimal(8), config=CONFIG, now=NOW)
    assert hold is not None and "rated capacity" in hold.reason
    assert review_hold(Decimal("8.8"), at, previous, capacity_kw=Decimal(8), config=CONFIG,
                       now=NOW) is None  # fmt: skip


def test_the_back_fill_horizon_and_the_threshold_hold_without_judging_the_source() -> None:
    old = review_hold(Decimal(1), NOW - timedelta(hours=48, seconds=1), None, capacity_kw=None,
                      config=CONFIG, now=NOW)  # fmt: skip
    assert old == Hold(old.reason) and "48 h back-fill horizon" in old.reason
    assert review_hold(Decimal(1), NOW - timedelta(hours=48), None, capacity_kw=None,
                       config=CONFIG, now=NOW) is None  # fmt: skip
    big = review_hold(Decimal("50.000001"), NOW, None, capacity_kw=None, config=CONFIG, now=NOW)
    assert big is not None and not big.implausible and "review threshold" in big.reason
    off = CONFIG.model_copy(update={"review_threshold_kwh": None})
    assert review_hold(Decimal(100), NOW, None, capacity_kw=None, config=off, now=NOW) is None


def test_an_implausible_reading_holds_its_whole_batch_an_old_one_does_not() -> None:
    implausible, old = Hold("too much", implausible=True), Hold("too old")
    held = hold_together([None, implausible, None])
    assert held[1] is implausible
    assert all(h is not None and h.reason.startswith("held with its batch: 1 of 3") for h in
               (held[0], held[2]))  # fmt: skip
    assert hold_together([None, old, None]) == [None, old, None]
