"""The meter reading budget kept in PostgreSQL, so N api processes share one per meter.

Same rules as core.readings.budget.ReadingBudget (readings not requests, a
refusal spends nothing, more than the burst is too large), with the bucket in
the row `meter_budgets(meter_id)` instead of process memory. One statement
spends: an INSERT ... ON CONFLICT DO UPDATE that refills by the time elapsed on
the database's clock, takes the cost when it fits and says whether it did. The
row lock it takes serialises the processes spending for the same meter; a
meter's readings arrive minutes apart, so there is no hot row in practice.

Integers only: micro-tokens and microseconds. A dedicated small engine runs
the statement in autocommit, apart from the request's own session: the spend
stands even if the request is rolled back (nothing is free), and a request
holding a pooled connection never waits for a second one from the same pool.
Its commits do not wait for the WAL flush (synchronous_commit off): an update
lost in a server crash only forgives a few readings. Cost measured by
bench/reading_budget.py (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from core.db.engine import create_db_engine
from core.ratelimit import RateLimited
from core.readings.budget import ReadingBudget
from core.readings.errors import PayloadTooLarge

MICRO = 1_000_000
POOL_SIZE = 4  # statements take well under a millisecond

# One statement spends for many meters at once (distinct ids): it refills each row by
# the time elapsed, takes the cost when it fits and says whether it did. Each row's
# cost travels as `full - micro_tokens` of its proposed insert, so the update reads it
# from `excluded`. :now_us is NULL in production: the database clock is the one all
# processes share.
_SPEND_MANY = text(
    """
    INSERT INTO meter_budgets AS b (meter_id, micro_tokens, refilled_us, granted)
    SELECT c.meter_id, :full - c.cost,
        COALESCE(CAST(:now_us AS bigint),
            CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS bigint)),
        true
    FROM unnest(CAST(:meter_ids AS INTEGER[]), CAST(:costs AS BIGINT[])) AS c(meter_id, cost)
    ON CONFLICT (meter_id) DO UPDATE SET (micro_tokens, refilled_us, granted) = (
        SELECT CASE WHEN a >= :full - excluded.micro_tokens
            THEN a - (:full - excluded.micro_tokens) ELSE a END,
            excluded.refilled_us, a >= :full - excluded.micro_tokens
        FROM (
            SELECT LEAST(
                CAST(:full AS bigint),
                b.micro_tokens
                + GREATEST(0, LEAST(excluded.refilled_us - b.refilled_us, :fill_us))
                  * :per_minute / 60
            ) AS a
        ) AS available
    )
    RETURNING meter_id, micro_tokens, granted
    """
)
_REMAINING = text(
    """
    SELECT LEAST(
        CAST(:full AS bigint),
        micro_tokens
        + GREATEST(0, LEAST(
            COALESCE(CAST(:now_us AS bigint),
                CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS bigint))
            - refilled_us,
            :fill_us
        )) * :per_minute / 60
    )
    FROM meter_budgets WHERE meter_id = :meter_id
    """
)


class SharedReadingBudget:
    """ReadingBudget's interface over the meter_budgets table (PostgreSQL only)."""

    def __init__(
        self,
        engine: Engine,
        per_minute: int,
        burst: int,
        *,
        clock_us: Callable[[], int] | None = None,
    ) -> None:
        """`clock_us` (microseconds) replaces the database clock in tests."""
        if engine.dialect.name != "postgresql":
            raise ValueError("the shared reading budget needs PostgreSQL")
        self.engine = engine
        self.per_minute = per_minute
        self.burst = burst
        self._clock_us = clock_us
        full = burst * MICRO
        self._params = {
            "full": full,
            "per_minute": per_minute,
            # Refill beyond this is capped: the bucket is full by then, and products stay in bigint.
            "fill_us": full * 60 // per_minute + 1,
        }

    def _now(self) -> int | None:
        return None if self._clock_us is None else self._clock_us()

    def _cost(self, readings: int) -> int:
        cost = max(1, readings)
        if cost > self.burst:
            raise PayloadTooLarge(
                f"a meter may send at most {self.burst} readings at once "
                f"(METER_RATE_LIMIT_BURST), got {cost}; split the batch",
                field="readings",
            )
        return cost

    def spend(self, meter_id: int, readings: int) -> None:
        """Spend `readings` tokens (at least one) or refuse whole; see ReadingBudget.spend."""
        (refusal,) = self.spend_many([(meter_id, readings)])
        if refusal is not None:
            raise refusal

    def spend_many(self, spends: Sequence[tuple[int, int]]) -> list[Exception | None]:
        """`spend` for many (meter_id, readings) at once, in one statement per round:
        each spend's refusal (or None), in order. A meter named twice spends in order."""
        answers: list[Exception | None] = [None] * len(spends)
        rounds: list[dict[int, tuple[int, int]]] = []  # meter -> (position, cost)
        for position, (meter_id, readings) in enumerate(spends):
            try:
                cost = self._cost(readings)
            except PayloadTooLarge as error:
                answers[position] = error
                continue
            free = next((r for r in rounds if meter_id not in r), None)
            if free is None:
                free = {}
                rounds.append(free)
            free[meter_id] = (position, cost)
        for spend_round in rounds:
            ids = sorted(spend_round)  # rows locked in id order, as everywhere
            with self.engine.connect() as connection:
                rows = connection.execute(
                    _SPEND_MANY,
                    {
                        **self._params,
                        "meter_ids": ids,
                        "costs": [spend_round[m][1] * MICRO for m in ids],
                        "now_us": self._now(),
                    },
                ).all()
            for meter_id, micro_tokens, granted in rows:
                position, cost = spend_round[meter_id]
                if not granted:
                    answers[position] = self._refusal(cost, micro_tokens)
        return answers

    def _refusal(self, cost: int, micro_tokens: int) -> RateLimited:
        missing = cost * MICRO - micro_tokens
        return RateLimited(
            f"too many readings from this meter: at most {self.per_minute} per minute; "
            "retry after the delay",
            retry_after_secs=max(1, math.ceil(missing * 60 / (self.per_minute * MICRO))),
            limit_per_minute=self.per_minute,
            burst=self.burst,
            remaining=micro_tokens // MICRO,
        )

    def remaining(self, meter_id: int) -> int:
        """Whole readings the meter may send now."""
        with self.engine.connect() as connection:
            micro_tokens = connection.execute(
                _REMAINING, {**self._params, "meter_id": meter_id, "now_us": self._now()}
            ).scalar()
        return self.burst if micro_tokens is None else micro_tokens // MICRO

    def close(self) -> None:
        self.engine.dispose()


def reading_budget(
    database_url: str,
    per_minute: int,
    burst: int,
    *,
    clock: Callable[[], float] | None = None,
) -> ReadingBudget | SharedReadingBudget:
    """The budget a process should use: shared in PostgreSQL, in memory on SQLite.

    SQLite serves one machine and normally one api process; a write per request
    there would take its single writer lock, so the bucket stays in memory
    (N processes on one SQLite file may each allow the full rate). `clock`
    (seconds) replaces time.monotonic, or the database clock, in tests.
    """
    if make_url(database_url).get_backend_name() != "postgresql":
        return ReadingBudget(per_minute, burst, clock=clock or time.monotonic)
    engine = create_db_engine(
        database_url,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        isolation_level="AUTOCOMMIT",
        # A spend lost in a server crash only forgives a few readings: no WAL flush wait.
        connect_args={"options": "-c synchronous_commit=off"},
    )
    clock_us = None if clock is None else (lambda: round(clock() * MICRO))
    return SharedReadingBudget(engine, per_minute, burst, clock_us=clock_us)
