"""Running totals (core.minting.totals) against the oracle: the full SQL sum of minted
readings, after random sequences of claim, sign, confirm, fail, expire, release and retry.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import Event, MeterReading, MintBatch, MintTotal
from core.minting import states
from core.minting.claim import claim_pending
from core.minting.reconcile import minted_base_units
from core.minting.totals import GRX, audit, running_minted
from tests.support.seed import T0, seed_producers, seed_readings

NOW = T0 + timedelta(days=2)


def oracle(session: Session) -> tuple[int, int]:
    """Counted independently of the module under test: plain SQL over every row."""
    count, units = session.execute(
        select(func.count(), func.coalesce(func.sum(MeterReading.token_base_units), 0)).where(
            MeterReading.status == "minted"
        )
    ).one()
    return int(count), int(units)


def running(session: Session) -> tuple[int, int]:
    total = session.get(MintTotal, GRX)
    session.refresh(total)
    return total.readings, total.base_units


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_running_totals_equal_the_full_sum_after_random_outcomes(sessions, seed: int) -> None:
    rng = random.Random(seed)
    cfg = TokenizationConfig.model_validate(
        {**TokenizationConfig().model_dump(), "max_retries": 2, "retry_base_secs": 1}
    )
    with sessions() as session:
        producers = seed_producers(session, 4)
        seed_readings(session, producers, 6)
        # Some readings worth nothing at this ratio are minted at claim, with no transaction.
        session.execute(update(MeterReading).where(MeterReading.id % 7 == 0).values(kwh_micro=1))
        session.commit()
    now = NOW
    for step in range(40):
        now += timedelta(seconds=5)
        with sessions() as session:
            batches = claim_pending(
                session, cfg, now=now, wallets_per_transaction=rng.randint(1, 3)
            )
            for batch in batches:
                if rng.random() < 0.15:
                    states.release_planned(session, batch.id, reason="test", now=now)
                    continue
                states.mark_signed_many(
                    session,
                    [states.SignedBatch(batch.id, f"sig-{step}-{batch.id}", b"r", "h", 9)],
                    now=now,
                )
                outcome = rng.choice(["confirm", "confirm", "fail", "expire"])
                if outcome == "confirm":
                    assert states.mark_confirmed(session, batch.id, slot=step, now=now)
                    assert not states.mark_confirmed(session, batch.id, slot=step, now=now)
                elif outcome == "fail":
                    states.mark_failed(session, batch.id, error="Custom(1)", config=cfg, now=now)
                else:
                    states.mark_expired(session, batch.id, now=now)
            if rng.random() < 0.3:  # an admin retries what failed for good
                session.execute(
                    update(MeterReading)
                    .where(MeterReading.status == "failed")
                    .values(status="pending", attempts=0, next_attempt_at=None)
                )
                session.commit()
            assert running(session) == oracle(session)
    with sessions() as session:
        count, units = oracle(session)
        assert count > 0 and units > 0  # the sequence minted something: the check can fail
        assert minted_base_units(session) == running_minted(session) == units
        assert session.scalar(select(func.count()).select_from(MintBatch)) > 0
    assert audit(sessions).ok


def test_the_audit_reports_a_total_that_drifted(sessions) -> None:
    with sessions() as session:
        seed_readings(session, seed_producers(session, 1), 2)
        session.execute(update(MeterReading).values(status="minted", token_base_units=5))
        session.commit()  # minted behind the running total's back
    result = audit(sessions)
    assert not result.ok
    assert (result.summed_base_units, result.running_base_units) == (10, 0)
    with sessions() as session:
        [event] = session.scalars(select(Event).where(Event.type == "reconcile_mismatch")).all()
        assert event.payload["check"] == "running_total"
        assert event.payload["expected_supply"] == 10
