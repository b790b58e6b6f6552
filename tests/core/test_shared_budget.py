"""core.readings.shared_budget on PostgreSQL: ReadingBudget's rules, one bucket for all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.orm import Session

from core.db.engine import create_db_engine
from core.ratelimit import RateLimited
from core.readings.errors import PayloadTooLarge
from core.readings.shared_budget import SharedReadingBudget, reading_budget
from tests.factories import make_meter

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.now_us = 5_000_000_000

    def __call__(self) -> int:
        return self.now_us


@pytest.fixture
def meters(pg_url: str) -> list[int]:
    engine = create_db_engine(pg_url)
    with Session(engine) as session:
        ids = [make_meter(session).meter.id for _ in range(2)]
    engine.dispose()
    return ids


def shared(pg_url: str, per_minute: int, burst: int, clock=None) -> SharedReadingBudget:
    engine = create_db_engine(pg_url, isolation_level="AUTOCOMMIT")
    return SharedReadingBudget(engine, per_minute, burst, clock_us=clock)


def test_readings_not_requests_are_counted(pg_url: str, meters: list[int]) -> None:
    clock = Clock()
    budget = shared(pg_url, 60, 10, clock)  # one per second, 10 at once
    first, second = meters
    budget.spend(first, 7)
    budget.spend(first, 0)  # a request with no reading still costs one
    assert budget.remaining(first) == 2
    with pytest.raises(RateLimited) as caught:
        budget.spend(first, 3)
    assert (caught.value.retry_after_secs, caught.value.remaining) == (1, 2)
    budget.spend(second, 10)  # another meter, its own budget
    clock.now_us += 999_999
    with pytest.raises(RateLimited):
        budget.spend(first, 3)  # 2.999999 tokens: not yet
    clock.now_us += 1
    budget.spend(first, 3)
    assert budget.remaining(first) == 0
    clock.now_us += 3_600_000_000  # an hour: full again, never more than the burst
    assert budget.remaining(first) == 10
    budget.close()


def test_more_than_the_burst_is_too_large_and_spends_nothing(
    pg_url: str, meters: list[int]
) -> None:
    budget = shared(pg_url, 60, 10, Clock())
    with pytest.raises(PayloadTooLarge) as caught:
        budget.spend(meters[0], 11)
    assert caught.value.field == "readings" and "METER_RATE_LIMIT_BURST" in caught.value.message
    assert budget.remaining(meters[0]) == 10
    budget.close()


def test_concurrent_spenders_through_two_engines_share_one_bucket(
    pg_url: str, meters: list[int]
) -> None:
    # Two budgets stand for two processes; on the database clock, a minute's rate of 1
    # cannot add a token while 40 spends run (they take far less than 60 s).
    budgets = [shared(pg_url, 1, 10), shared(pg_url, 1, 10)]

    def attempt(index: int) -> bool:
        try:
            budgets[index % 2].spend(meters[0], 1)
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(attempt, range(40)))
    assert granted == 10
    for budget in budgets:
        budget.close()


def test_sqlite_keeps_the_bucket_in_memory(sqlite_url: str) -> None:
    budget = reading_budget(sqlite_url, 60, 10, clock=lambda: 0.0)
    assert not isinstance(budget, SharedReadingBudget)
    budget.spend(1, 10)
    assert budget.remaining(1) == 0


def test_many_spends_in_one_statement_follow_the_same_rules(pg_url: str, meters: list[int]) -> None:
    clock = Clock()
    budget = shared(pg_url, 60, 10, clock)
    first, second = meters
    budget.spend(second, 9)
    # The first meter twice (in order), the second over what remains, one too big for any.
    answers = budget.spend_many([(first, 6), (second, 2), (first, 4), (first, 1), (second, 11)])
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], RateLimited) and answers[1].remaining == 1
    assert isinstance(answers[3], RateLimited) and answers[3].remaining == 0
    assert isinstance(answers[4], PayloadTooLarge)
    assert (budget.remaining(first), budget.remaining(second)) == (0, 1)
    # A refusal spends nothing; a meter never seen starts full.
    assert budget.spend_many([(second, 1)]) == [None]
    assert budget.remaining(second) == 0
    budget.close()
