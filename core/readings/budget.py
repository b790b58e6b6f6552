"""A meter's reading budget: readings per minute with a burst, whichever door they use.

The budget counts readings, not requests: a batch of N spends N tokens, a single
reading one, a request carrying none (an empty or malformed batch) still one, so
nothing is free. A request the budget cannot cover is refused whole and spends
nothing; nothing of it is stored. Every ingest door (our HTTP, GridTokenX HTTP,
MQTT, a gateway submitting for several meters) calls `spend` once per meter
before accepting, so one meter has one budget however it reports.

This bucket lives in process memory; on PostgreSQL the api processes share one
per meter in the database instead (core.readings.shared_budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from core.ratelimit import RateLimited, TokenBuckets
from core.readings.errors import PayloadTooLarge


class ReadingBudget:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._buckets = TokenBuckets(per_minute, burst=burst, clock=clock)

    def spend(self, meter_id: int, readings: int) -> None:
        """Spend `readings` tokens (at least one) of the meter's budget, or refuse whole.

        RateLimited (429, with the limit, what remains and Retry-After) when the
        bucket holds too few now; PayloadTooLarge (413) when the request holds
        more readings than the burst, which no wait would cover.
        """
        cost = max(1, readings)
        if cost > self.burst:
            raise PayloadTooLarge(
                f"a meter may send at most {self.burst} readings at once "
                f"(METER_RATE_LIMIT_BURST), got {cost}; split the batch",
                field="readings",
            )
        self._buckets.acquire(meter_id, "readings from this meter", cost)

    def spend_many(self, spends: Sequence[tuple[int, int]]) -> list[Exception | None]:
        """`spend` for each (meter_id, readings) in order: each one's refusal, or None."""
        answers: list[Exception | None] = []
        for meter_id, readings in spends:
            try:
                self.spend(meter_id, readings)
                answers.append(None)
            except (RateLimited, PayloadTooLarge) as error:
                answers.append(error)
        return answers

    def remaining(self, meter_id: int) -> int:
        return self._buckets.remaining(meter_id)

    def close(self) -> None:
        """Nothing to release (core.readings.shared_budget's twin holds an engine)."""
