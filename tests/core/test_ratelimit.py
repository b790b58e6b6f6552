"""Token buckets with an injected clock: exact, no sleeping."""

from __future__ import annotations

import pytest

from core.ratelimit import RateLimited, TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, clock=clock)  # one token per 10 s, burst 6
    assert [buckets.take("m") for _ in range(6)] == [0.0] * 6
    assert buckets.take("m") == pytest.approx(10.0)
    clock.now += 9.5
    assert buckets.take("m") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("m") == 0.0
    assert buckets.take("other") == 0.0  # keys are independent


def test_acquire_raises_with_a_whole_second_retry_after() -> None:
    clock = Clock()
    buckets = TokenBuckets(120, clock=clock)
    for _ in range(120):
        buckets.acquire("m")
    with pytest.raises(RateLimited) as caught:
        buckets.acquire("m")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after_secs == 1  # 0.5 s rounds up


def test_full_buckets_are_forgotten_when_there_are_too_many_keys() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, clock=clock, max_keys=3)
    for key in "abc":
        buckets.take(key)
    clock.now += 60
    buckets.take("d")
    assert set(buckets._buckets) == {"d"}


def test_a_take_of_several_tokens_is_refused_whole() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, burst=5, clock=clock)  # one token per 10 s
    assert buckets.take("m", 3) == 0.0
    assert buckets.remaining("m") == 2
    assert buckets.take("m", 3) == pytest.approx(10.0)  # one short
    assert buckets.remaining("m") == 2  # the refusal spent nothing
    assert buckets.take("m", 6) == float("inf")  # more than the burst never fits
    clock.now += 10
    assert buckets.take("m", 3) == 0.0
    assert buckets.remaining("m") == 0


def test_rate_limited_carries_the_budget() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, burst=5, clock=clock)
    buckets.acquire("m", cost=4)
    with pytest.raises(RateLimited) as caught:
        buckets.acquire("m", "readings", cost=3)
    assert caught.value.details == {"limit": 6, "burst": 5, "remaining": 1, "retry_after": 20}
