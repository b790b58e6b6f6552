"""A sample adds to its interval in SQL (one upsert), so adds from two transactions both count.

Ingest also locks the meter's row, which serialises one meter's requests; this
drives settle_sample from two sessions at once without that lock, so only the
upsert's own atomicity keeps the sum. The oracle is the plain sum of what was sent.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import TokenizationConfig
from core.db.models import IntervalAmount, SettlementInterval
from core.settlement import interval_bounds, meter_ref, settle_sample
from tests.factories import NOW, make_meter

SAMPLES_PER_THREAD = 40


def test_concurrent_samples_of_one_interval_settle_exactly(
    sessions: sessionmaker[Session],
) -> None:
    config = TokenizationConfig()
    with sessions() as session:
        meter_id = make_meter(session).meter.id
        ref = meter_ref(session, meter_id)
    start, _ = interval_bounds(NOW, config.settlement_interval_secs)
    rng = random.Random(13)
    plans = [
        [(rng.randint(-5_000, 9_000), rng.randint(0, 9_000)) for _ in range(SAMPLES_PER_THREAD)]
        for _ in range(2)
    ]
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(plan: list[tuple[int, int]], offset: int) -> None:
        try:
            barrier.wait()
            for index, (net, generated) in enumerate(plan):
                # Both threads' samples fall in the one interval (5-second ticks).
                at = start + timedelta(seconds=(2 * index + offset) % 900)
                with sessions() as session:
                    settle_sample(
                        session,
                        ref,
                        at,
                        energy_micro=net,
                        generated_micro=generated,
                        consumed_micro=generated - net,
                        config=config,
                        now=NOW,
                    )
                    session.commit()
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(plan, i)) for i, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    with sessions() as session:
        (interval,) = session.scalars(select(SettlementInterval)).all()
        sent = [sample for plan in plans for sample in plan]
        assert interval.interval_start == start
        assert interval.status == "open"
        assert interval.sample_count == len(sent)
        assert interval.net_micro == sum(net for net, _ in sent)
        assert interval.generated_micro == sum(generated for _, generated in sent)
        assert interval.consumed_micro == sum(generated - net for net, generated in sent)
        assert interval.settled_micro == 0
        assert session.scalars(select(IntervalAmount)).all() == []


def test_a_late_sample_after_the_upsert_adjusts_once(sessions: sessionmaker[Session]) -> None:
    """Closed by the next interval's sample, then a late one: its surplus mints as seq 1."""
    config = TokenizationConfig()
    with sessions() as session:
        meter_id = make_meter(session).meter.id
        ref = meter_ref(session, meter_id)
    start, end = interval_bounds(NOW, config.settlement_interval_secs)

    def settle(at, net: int):
        with sessions() as session:
            settled = settle_sample(
                session,
                ref,
                at,
                energy_micro=net,
                generated_micro=max(net, 0),
                consumed_micro=max(-net, 0),
                config=config,
                now=NOW,
            )
            session.commit()
            return settled

    assert settle(start, 700).opened
    assert not settle(start + timedelta(seconds=5), -200).opened
    after = settle(end, 1)  # opens the next interval and closes the first
    assert after.opened and len(after.readings) == 1
    late = settle(start + timedelta(seconds=10), 300)
    assert late.late and late.status == "closed" and len(late.readings) == 1
    shrink = settle(start + timedelta(seconds=15), -900)
    assert shrink.late and shrink.readings == ()
    with sessions() as session:
        first = session.scalars(
            select(SettlementInterval).where(SettlementInterval.interval_start == start)
        ).one()
        assert (first.net_micro, first.settled_micro, first.sample_count) == (-100, 800, 4)
        amounts = session.scalars(
            select(IntervalAmount)
            .where(IntervalAmount.interval_id == first.id)
            .order_by(IntervalAmount.seq)
        ).all()
        assert [(a.seq, a.kwh_micro) for a in amounts] == [(0, 500), (1, 300)]
