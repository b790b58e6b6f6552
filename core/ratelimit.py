"""Token buckets per key (a meter, a login's client), in process memory.

Each key holds up to `burst` tokens and regains `rate_per_minute` per minute,
continuously. A request takes `cost` tokens (one unless it says more) or is
refused whole, spending nothing, with the time until enough tokens are there
(the HTTP layer sends it as Retry-After). The clock is injected so tests are
exact without sleeping.

The buckets live in one process: with N API workers a key may reach N times the
rate. That is accepted for logins (the limit slows guessing from one client); a
meter's reading budget is shared across processes on PostgreSQL instead
(core.readings.shared_budget).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from core.errors import DomainError


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        retry_after_secs: int,
        *,
        limit_per_minute: int | None = None,
        burst: int | None = None,
        remaining: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs
        self.limit_per_minute = limit_per_minute
        self.burst = burst
        self.remaining = remaining

    @property
    def details(self) -> dict[str, Any]:
        """What the 429 body shows besides code and message: the budget and its state."""
        shown = {
            "limit": self.limit_per_minute,
            "burst": self.burst,
            "remaining": self.remaining,
            "retry_after": self.retry_after_secs,
        }
        return {name: value for name, value in shown.items() if value is not None}


class TokenBuckets:
    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be > 0")
        self.rate_per_sec = rate_per_minute / 60
        self.burst = float(burst if burst is not None else rate_per_minute)
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def per_minute(self) -> int:
        return round(self.rate_per_sec * 60)

    def take(self, key: Hashable, cost: int = 1) -> float:
        """Take `cost` tokens: 0.0 when allowed, else the seconds until that many are there
        (infinite when `cost` exceeds the burst: it never fits). Refused takes spend nothing."""
        if cost < 1:
            raise ValueError("cost must be >= 1")
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                if len(self._buckets) > self._max_keys:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if cost > self.burst:
                return math.inf
            return (cost - tokens) / self.rate_per_sec

    def remaining(self, key: Hashable) -> int:
        """Whole tokens the key holds now."""
        now = self._clock()
        with self._lock:
            return math.floor(self._tokens(key, now))

    def acquire(self, key: Hashable, what: str = "requests", cost: int = 1) -> None:
        """Take `cost` tokens or raise RateLimited with a whole-second Retry-After."""
        wait = self.take(key, cost)
        if wait > 0:
            raise RateLimited(
                f"too many {what}: at most {self.per_minute} per minute; retry after the delay",
                retry_after_secs=max(1, math.ceil(wait)),
                limit_per_minute=self.per_minute,
                burst=math.floor(self.burst),
                remaining=self.remaining(key),
            )

    def _tokens(self, key: Hashable, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate_per_sec)

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket.
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate_per_sec < self.burst
        }
