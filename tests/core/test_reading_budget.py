"""core.readings.budget: the one per-meter limiter every ingest door calls."""

from __future__ import annotations

import pytest

from core.ratelimit import RateLimited
from core.readings.budget import ReadingBudget
from core.readings.errors import PayloadTooLarge


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_readings_not_requests_are_counted() -> None:
    clock = Clock()
    budget = ReadingBudget(60, 10, clock=clock)  # one per second, 10 at once
    budget.spend(1, 7)
    budget.spend(1, 0)  # a request with no reading still costs one
    assert budget.remaining(1) == 2
    with pytest.raises(RateLimited) as caught:
        budget.spend(1, 3)
    assert (caught.value.retry_after_secs, caught.value.remaining) == (1, 2)
    budget.spend(2, 10)  # another meter, its own budget
    clock.now += 1
    budget.spend(1, 3)
    assert budget.remaining(1) == 0


def test_more_than_the_burst_is_too_large_not_limited() -> None:
    budget = ReadingBudget(60, 10, clock=Clock())
    with pytest.raises(PayloadTooLarge) as caught:
        budget.spend(1, 11)
    assert caught.value.field == "readings" and "METER_RATE_LIMIT_BURST" in caught.value.message
    assert budget.remaining(1) == 10
