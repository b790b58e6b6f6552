"""Minted readings per 15 minutes (core.minting.minted_buckets, kept by triggers) and the
costs panel that reads them, against an oracle that counts the rows' own minted_at in
Python after the pipeline's writes and after writes that bypass it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import MeterReading, User
from core.minting import states
from core.minting.claim import claim_pending
from core.minting.minted_buckets import minted_between, minted_per_bucket
from core.views.costs import costs
from tests.support.seed import T0, Producer, seed_producers, seed_readings

NOW = T0 + timedelta(days=2, minutes=7, seconds=13)


def minted_times(session: Session) -> list[datetime]:
    return list(
        session.scalars(select(MeterReading.minted_at).where(MeterReading.minted_at.is_not(None)))
    )


def oracle_between(times: list[datetime], since: datetime, until: datetime) -> int:
    return sum(1 for moment in times if since <= moment < until)


def _mint_randomly(sessions, rng: random.Random, producers: list[Producer]) -> datetime:
    """Claims, confirms, failures and expiries with time jumping across bucket edges."""
    cfg = TokenizationConfig.model_validate(
        {
            **TokenizationConfig().model_dump(),
            "max_retries": 2,
            "retry_base_secs": 1,
            "batch_size": 4,
        }
    )
    now = NOW
    for step in range(30):
        now += timedelta(seconds=rng.choice([1, 59, 301, 899, 900, 3_601, 20_000]))
        with sessions() as session:
            start = T0 + timedelta(days=1, hours=step)
            seed_readings(session, producers[: rng.randint(1, len(producers))], 1, start=start)
            for batch in claim_pending(session, cfg, now=now, wallets_per_transaction=2):
                states.mark_signed_many(
                    session,
                    [states.SignedBatch(batch.id, f"s{step}-{batch.id}", b"r", "h", 9)],
                    now=now,
                )
                outcome = rng.choice(["confirm", "confirm", "fail", "expire"])
                if outcome == "confirm":
                    states.mark_confirmed(session, batch.id, slot=step, now=now)
                elif outcome == "fail":
                    states.mark_failed(session, batch.id, error="Custom(1)", config=cfg, now=now)
                else:
                    states.mark_expired(session, batch.id, now=now)
    return now


@pytest.mark.parametrize("seed", [5, 6])
def test_minted_counts_equal_the_rows_over_any_range(sessions, seed: int) -> None:
    rng = random.Random(seed)
    with sessions() as session:
        producers = seed_producers(session, 5)
        seed_readings(session, producers, 8)
        # Worth nothing at this ratio: minted by the claim itself, with no transaction.
        session.execute(update(MeterReading).where(MeterReading.id % 9 == 0).values(kwh_micro=1))
        session.add(User(username="root", role="admin", password_hash="-"))
        session.commit()
    end = _mint_randomly(sessions, rng, producers)
    with sessions() as session:  # writers other than the pipeline are counted too
        for reading in session.scalars(
            select(MeterReading).where(
                MeterReading.id % 5 == 0, MeterReading.minted_at.is_not(None)
            )
        ):
            reading.minted_at += timedelta(minutes=7)  # an ORM flush: one UPDATE per row
        seed_readings(session, producers[:2], 3, start=T0 - timedelta(days=1), status="minted")
        session.execute(
            update(MeterReading)
            .where(MeterReading.reading_timestamp < T0)
            .values(minted_at=end - timedelta(hours=3), token_base_units=7)
        )
        session.commit()
    with sessions() as session:
        times = minted_times(session)
        assert len(times) > 10 and len({t.replace(minute=0) for t in times}) > 3
        for _ in range(60):
            since = NOW + timedelta(
                seconds=rng.randrange(-1_000, 80_000), microseconds=rng.randrange(10**6)
            )
            until = since + timedelta(seconds=rng.choice([0, 1, 600, 900, 5_000, 100_000]))
            assert minted_between(session, since, until) == oracle_between(times, since, until)
        start = NOW.replace(minute=0, second=0)
        hourly = minted_per_bucket(session, start, start + timedelta(days=2), 3_600)
        for offset in range(48):
            bucket = start + timedelta(hours=offset)
            expected = oracle_between(times, bucket, bucket + timedelta(hours=1))
            assert hourly.get(int(bucket.timestamp()), 0) == expected
        viewer = session.scalars(select(User).where(User.username == "root")).one()
        panel = costs(session, viewer, end)
        month = oracle_between(times, end - timedelta(days=30), end + timedelta(microseconds=1))
        assert panel.last_30_days.readings_minted == month > 0
        for point in panel.hourly + panel.daily:
            span = timedelta(hours=1) if point in panel.hourly else timedelta(days=1)
            expected = oracle_between(times, point.bucket_start, point.bucket_start + span)
            assert point.cost.readings_minted == expected
        day = end.replace(hour=0, minute=0, second=0, microsecond=0)
        assert panel.today.readings_minted == oracle_between(
            times, day, end + timedelta(microseconds=1)
        )


def test_a_window_not_on_bucket_edges_is_refused(sessions) -> None:
    with sessions() as session, pytest.raises(ValueError):
        minted_per_bucket(session, NOW, NOW + timedelta(hours=1), 3_600)
