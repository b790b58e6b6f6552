"""Claiming and the batch state machine on both databases (no chain needed)."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.config import TokenizationConfig
from core.db.engine import create_db_engine, session_factory
from core.db.models import Event, MeterReading, MintBatch, MintRequest, User
from core.minting import states
from core.minting.claim import claim_due, claim_pending
from core.minting.fill import Capacity
from tests.support.seed import T0, seed_producers, seed_readings

NOW = T0 + timedelta(days=2)


def config(**changes) -> TokenizationConfig:
    return TokenizationConfig.model_validate({**TokenizationConfig().model_dump(), **changes})


def claim(session: Session, cfg: TokenizationConfig, capacity: int = 18):
    return claim_pending(session, cfg, now=NOW, wallets_per_transaction=capacity)


def statuses(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(MeterReading.status, func.count()).group_by(MeterReading.status)
    ).all()
    return dict(rows)


def test_claim_records_units_ratio_and_batches(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        producers = seed_producers(session, 5)
        seed_readings(session, producers, 3, kwh_micro=2_010_000)
        claimed = claim(session, config(kwh_to_token_ratio="2.5", batch_size=12), capacity=2)
    assert sum(len(b.reading_ids) for b in claimed) == 12
    assert [len(b.mints) for b in claimed] == [2, 2]  # the first 12 are 4 wallets × 3, 2 per tx
    with sessions() as session:
        minting = session.scalars(select(MeterReading).where(MeterReading.status == "minting"))
        for reading in minting:
            assert reading.token_base_units == 5_025_000_000  # 2.01 kWh × 2.5, exact
            assert reading.ratio_applied == Decimal("2.5")
            assert reading.mint_batch_id in {b.id for b in claimed}
        batches = session.scalars(select(MintBatch).order_by(MintBatch.id)).all()
        assert [b.status for b in batches] == ["planned"] * 2
        assert sum(b.total_base_units for b in batches) == 12 * 5_025_000_000
        assert len(batches) == 2
        assert statuses(session) == {"minting": 12, "pending": 3}


def test_auto_mint_off_claims_only_what_admins_asked_for(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 3)
        off = config(auto_mint_enabled=False)
        assert claim(session, off) == []
        first, second = session.scalars(select(MeterReading.id).order_by(MeterReading.id)).all()[:2]
        session.execute(
            update(MeterReading).where(MeterReading.id == second).values(mint_requested_at=NOW)
        )
        session.commit()
        assert [b.reading_ids for b in claim(session, off)] == [[second]]
        admin = User(username="root", role="admin", password_hash="-")
        session.add(admin)
        session.flush()
        session.add(MintRequest(requested_by=admin.id, upto_reading_id=first + 2, created_at=NOW))
        session.commit()
        again = claim(session, off)
        assert sorted(r for b in again for r in b.reading_ids) == [first, first + 2]


def test_backoff_is_respected(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 1)
        seed_readings(session, producers, 2)
        session.execute(update(MeterReading).values(next_attempt_at=NOW + timedelta(seconds=5)))
        session.commit()
        assert claim(session, config()) == []
        session.execute(update(MeterReading).values(next_attempt_at=NOW - timedelta(seconds=1)))
        session.commit()
        assert len(claim(session, config())[0].reading_ids) == 2


def test_invalid_wallet_fails_alone_with_its_reason(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 1)
        bad = session.scalars(select(MeterReading.id).order_by(MeterReading.id)).first()
        session.execute(
            update(MeterReading)
            .where(MeterReading.id == bad)
            .values(wallet_address="legacy-0xdeadbeef")
        )
        session.commit()
        claimed = claim(session, config())
        assert [r for b in claimed for r in b.reading_ids] == [bad + 1]
        failed = session.get(MeterReading, bad)
        assert failed.status == "failed" and "wallet" in failed.last_error
        event = session.scalars(select(Event).where(Event.type == "mint_failed")).one()
        assert event.payload["reading_ids"] == [bad] and event.payload["will_retry"] is False


def _sign(session: Session, batch_id: int, signature: str) -> set[int]:
    return states.mark_signed_many(
        session,
        [states.SignedBatch(batch_id, signature, b"raw", "hash", 500)],
        now=NOW,
    )


def test_confirm_mints_readings_and_writes_events_once(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 2, kwh_micro=1_500_000)
        [batch] = claim(session, config())
        assert _sign(session, batch.id, "sig-1") == {batch.id}
        assert states.mark_confirmed(session, batch.id, slot=77, now=NOW)
        assert not states.mark_confirmed(session, batch.id, slot=77, now=NOW)  # loser does nothing
        assert statuses(session) == {"minted": 4}
        minted = session.scalars(select(MeterReading)).all()
        assert {r.mint_tx_signature for r in minted} == {"sig-1"}
        events = session.scalars(select(Event).order_by(Event.id)).all()
        assert [e.type for e in events] == [
            "tokens_minted",
            "tokens_minted",
            "batch_minting_completed",
        ]
        assert events[0].payload["tokens_minted"] == 3_000_000_000
        assert events[0].payload["kwh_amount"] == "3.000000"
        assert events[0].user_id == producers[0].user_id
        assert events[2].user_id is None and events[2].payload["successful_mints"] == 4


def test_a_released_batch_can_never_be_signed(sessions) -> None:
    with sessions() as session:
        seed_readings(session, seed_producers(session, 1), 1)
        [batch] = claim(session, config())
        assert states.release_planned(session, batch.id, reason="test", now=NOW)
        assert _sign(session, batch.id, "late") == set()
        assert session.get(MintBatch, batch.id).status == "expired"
        assert statuses(session) == {"pending": 1}


def test_failure_backs_off_then_fails_for_an_admin(sessions) -> None:
    cfg = config(max_retries=1, retry_base_secs=10)
    with sessions() as session:
        seed_readings(session, seed_producers(session, 1), 1)
        [batch] = claim(session, cfg)
        _sign(session, batch.id, "s1")
        assert states.mark_failed(session, batch.id, error="Custom(1)", config=cfg, now=NOW)
        reading = session.scalars(select(MeterReading)).one()
        assert (reading.status, reading.attempts) == ("pending", 1)
        assert reading.next_attempt_at == NOW + timedelta(seconds=10)
        later = NOW + timedelta(seconds=11)
        [batch2] = claim_pending(session, cfg, now=later, wallets_per_transaction=18)
        _sign(session, batch2.id, "s2")
        assert states.mark_failed(session, batch2.id, error="Custom(1)", config=cfg, now=later)
        session.refresh(reading)
        assert (reading.status, reading.attempts, reading.last_error) == ("failed", 2, "Custom(1)")
        will_retry = [
            e.payload["will_retry"]
            for e in session.scalars(
                select(Event).where(Event.type == "mint_failed").order_by(Event.id)
            )
        ]
        assert will_retry == [True, False]


def test_expired_batch_returns_readings_without_spending_an_attempt(sessions) -> None:
    with sessions() as session:
        seed_readings(session, seed_producers(session, 1), 2)
        [batch] = claim(session, config())
        _sign(session, batch.id, "s1")
        assert states.mark_expired(session, batch.id, now=NOW)
        assert not states.mark_confirmed(session, batch.id, slot=1, now=NOW)
        readings = session.scalars(select(MeterReading)).all()
        assert {(r.status, r.attempts, r.mint_batch_id) for r in readings} == {("pending", 0, None)}


@pytest.mark.postgres
def test_concurrent_claims_on_postgres_never_share_a_reading(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    sessions = session_factory(engine)
    with sessions() as session:
        seed_readings(session, seed_producers(session, 40), 10)
    claimed: list[list[int]] = [[], [], [], []]
    barrier = threading.Barrier(4)

    def worker(slot: int) -> None:
        barrier.wait()
        while True:
            with sessions() as session:
                batches = claim(session, config(batch_size=7))
            if not batches:
                return
            claimed[slot] += [r for b in batches for r in b.reading_ids]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [r for ids in claimed for r in ids]
    assert len(everything) == 400 and len(set(everything)) == 400
    assert sum(1 for ids in claimed if ids) >= 2  # they really ran side by side
    engine.dispose()


# --- fill or wait -------------------------------------------------------------------------


def seed_recent(session: Session, producers: int, per_producer: int = 1, *, age: int = 10):
    """Readings accepted `age` seconds before NOW (seed adds 3 s to the start)."""
    found = seed_producers(session, producers, namespace=f"recent{age}")
    seed_readings(session, found, per_producer, start=NOW - timedelta(seconds=age + 3))
    return found


def test_readings_wait_to_fill_a_transaction_until_the_oldest_is_due(sessions) -> None:
    with sessions() as session:
        seed_recent(session, 2)
        waiting = claim_due(session, config(), now=NOW, capacity=Capacity(legacy=3))
        assert waiting.batches == [] and statuses(session) == {"pending": 2}
        assert waiting.next_due_at == NOW + timedelta(seconds=50)  # accepted 10 s ago, 60 s wait
        due = claim_due(session, config(), now=waiting.next_due_at, capacity=Capacity(legacy=3))
        assert [len(b.mints) for b in due.batches] == [2] and due.next_due_at is None
        assert statuses(session) == {"minting": 2}


def test_a_full_transaction_goes_at_once_and_the_rest_waits(sessions) -> None:
    with sessions() as session:
        producers = seed_recent(session, 3)
        claim = claim_due(session, config(), now=NOW, capacity=Capacity(legacy=2))
        assert [[w for w, _ in b.mints] for b in claim.batches] == [
            [producers[0].wallet, producers[1].wallet]
        ]
        assert claim.next_due_at == NOW + timedelta(seconds=50)
        assert statuses(session) == {"minting": 2, "pending": 1}
        assert claim_pending(
            session, config(max_mint_wait_secs=0), now=NOW, wallets_per_transaction=2
        )


def test_one_claim_sends_every_full_transaction_there_is_room_for(sessions) -> None:
    with sessions() as session:
        producers = seed_recent(session, 23)  # fresh: only full transactions are due
        cfg = config(batch_size=4)  # alone, it would stop after two transactions
        claim = claim_due(session, cfg, now=NOW, capacity=Capacity(legacy=3), room=10)
        # all 7 full transactions of 3 go (room for 10), the 2 wallets left over wait
        assert [[w for w, _ in b.mints] for b in claim.batches] == [
            [p.wallet for p in producers[i : i + 3]] for i in range(0, 21, 3)
        ]
        assert claim.next_due_at == NOW + timedelta(seconds=50)  # the two left are not due
        assert statuses(session) == {"minting": 21, "pending": 2}


def test_full_transactions_left_for_lack_of_room_are_due_at_once(sessions) -> None:
    with sessions() as session:
        seed_recent(session, 23)
        cfg = config(batch_size=1)
        claim = claim_due(session, cfg, now=NOW, capacity=Capacity(legacy=3), room=2)
        assert [len(b.mints) for b in claim.batches] == [3, 3]
        assert claim.next_due_at == NOW  # five more full transactions wait for no one
        claim = claim_due(session, cfg, now=NOW, capacity=Capacity(legacy=3), room=5)
        assert [len(b.mints) for b in claim.batches] == [3] * 5
        assert claim.next_due_at == NOW + timedelta(seconds=50)  # only the partial two wait


def test_all_of_a_wallets_due_readings_share_one_mint(sessions) -> None:
    with sessions() as session:
        seed_readings(session, seed_producers(session, 1), 5, kwh_micro=1_250_001)
        [batch] = claim(session, config(batch_size=2))  # whole wallets: all five together
        assert batch.mints == [(batch.mints[0][0], 5 * 1_250_001_000)]
        assert len(batch.reading_ids) == 5


def test_mint_now_sends_waiting_readings_at_once(sessions) -> None:
    with sessions() as session:
        seed_recent(session, 1)
        assert claim(session, config()) == []
        admin = User(username="root", role="admin", password_hash="-")
        session.add(admin)
        session.flush()
        upto = session.scalar(select(func.max(MeterReading.id)))
        session.add(MintRequest(requested_by=admin.id, upto_reading_id=upto, created_at=NOW))
        session.commit()
        assert [len(b.reading_ids) for b in claim(session, config())] == [1]


def test_holding_a_wallet_without_an_account_keeps_its_readings_with_the_reason(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 2, kwh_micro=1_000_000)
        [batch] = claim(session, config())
        until = NOW + timedelta(seconds=60)
        held = states.hold_wallets(
            session, batch.id, [producers[0].wallet], reason="no account", until=until, now=NOW
        )
        assert len(held) == 2
        row = session.get(MintBatch, batch.id)
        assert (row.status, row.total_readings, row.total_base_units, row.mint_count) == (
            "planned",
            2,
            2_000_000_000,
            1,
        )
        readings = session.scalars(select(MeterReading).where(MeterReading.id.in_(held))).all()
        assert {(r.status, r.next_attempt_at, r.last_error, r.attempts) for r in readings} == {
            ("pending", until, "no account", 0)
        }
        assert claim_pending(session, config(), now=until, wallets_per_transaction=18)
        [again] = session.scalars(
            select(MintBatch).where(MintBatch.status == "planned").order_by(MintBatch.id.desc())
        ).all()[:1]
        states.hold_wallets(
            session, again.id, [producers[0].wallet], reason="no account", until=until, now=until
        )
        assert session.get(MintBatch, again.id).status == "expired"  # nothing left in it
        told = session.scalars(select(Event).where(Event.type == "mint_failed")).all()
        assert [(e.payload["reading_ids"], e.payload["will_retry"]) for e in told] == [
            (sorted(held), True)
        ]  # told once, not at every retry
