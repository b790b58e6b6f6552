"""Token buckets per key (a meter's API key, a login's client), in process memory.

Each key holds up to `burst` tokens and regains `rate_per_minute` per minute,
continuously. A request takes one token or is refused with the time until the
next token (the HTTP layer sends it as Retry-After). The clock is injected so
tests are exact without sleeping.

The buckets live in one process: with N API workers a key may reach N times the
rate. A shared limiter (database or Redis) would cost a round trip per request;
the limit guards against runaway meters, not against a determined adversary.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from core.errors import DomainError


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_secs: int) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs


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
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate_per_sec)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > self._max_keys:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate_per_sec

    def acquire(self, key: Hashable, what: str = "requests") -> None:
        """Take a token or raise RateLimited with a whole-second Retry-After."""
        wait = self.take(key)
        if wait > 0:
            per_minute = round(self.rate_per_sec * 60)
            raise RateLimited(
                f"too many {what}: at most {per_minute} per minute; retry after the delay",
                retry_after_secs=max(1, math.ceil(wait)),
            )

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket.
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate_per_sec < self.burst
        }
