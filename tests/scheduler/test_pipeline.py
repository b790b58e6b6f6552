"""The mint pipeline end to end: real database, real localnet executing SPL Token."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from core.chain.factories import SplMintTo
from core.db.models import Event, MeterReading, MintBatch, User
from core.db.types import utcnow
from core.minting.claim import claim_pending
from core.minting.pipeline import CycleReport, MintPipeline, MintTarget
from core.minting.reconcile import check_supply
from core.minting.requests import (
    request_mint_now,
    request_reading_mint,
    retry_failed_readings,
)
from core.minting.totals import audit
from core.settings_store import update_settings
from tests.scheduler.conftest import count_by_status, expected_by_wallet
from tests.support.seed import T0, seed_producers, seed_readings


def chain_balances(minter, wallets) -> dict[str, int]:
    return {w: minter.chain.token_balance(minter.pipeline.accounts.address(w)) for w in wallets}


def assert_chain_matches_db(minter, app) -> None:
    expected = expected_by_wallet(app)
    assert chain_balances(minter, expected) == expected
    supply = minter.chain.token_supply(minter.grx.address)
    assert supply == minter.grx.bootstrap_supply + sum(expected.values())
    assert check_supply(app.sessions, str(minter.grx.address), lambda: supply).ok
    assert audit(app.sessions).ok  # the running total reconcile read is the full sum


def test_readings_become_exact_tokens_in_one_cycle(mint_app, make_minter) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        producers = seed_producers(session, 3)
        seed_readings(session, producers, 4)
        session.execute(
            update(MeterReading).where(MeterReading.id == 1).values(kwh_micro=2_010_000)
        )
        session.commit()
    report = minter.pipeline.run_cycle()
    assert report.claimed_readings == 12 and report.confirmed >= 1
    assert count_by_status(mint_app) == {"minted": 12}
    with mint_app.sessions() as session:
        first = session.get(MeterReading, 1)
        assert first.token_base_units == 2_010_000_000  # the float trap, minted exactly
        assert first.mint_tx_signature and first.ratio_applied == Decimal("1.0")
        minted = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
    assert sum(e.payload["tokens_minted"] for e in minted) == sum(
        expected_by_wallet(mint_app).values()
    )
    assert_chain_matches_db(minter, mint_app)


def test_hundreds_of_readings_pack_into_few_transactions(mint_app, make_minter) -> None:
    with mint_app.sessions() as session:
        update_settings(session, mint_app.settings.tokenization, {"batch_size": 1000}, by="t")
        seed_readings(session, seed_producers(session, 60), 3)
    minter = make_minter()
    report = minter.pipeline.run_cycle()
    assert report.claimed_readings == 180
    assert count_by_status(mint_app) == {"minted": 180}
    with mint_app.sessions() as session:
        batches = session.scalars(
            select(MintBatch).where(MintBatch.kind == "mint").order_by(MintBatch.id)
        ).all()
        creations = session.scalars(select(MintBatch).where(MintBatch.kind != "mint")).all()
    capacity = minter.pipeline.wallets_per_transaction
    assert capacity == 19  # legacy, with the compute-unit limit instruction
    assert [b.mint_count for b in batches] == [19, 19, 19, 3]  # one MintTo per wallet, packed
    assert [len(c.payload["owners"]) for c in creations] == [12] * 5  # token accounts first
    assert all(len(b.raw_tx) <= 1232 for b in batches + creations)
    assert all(b.status == "confirmed" for b in batches + creations)
    assert_chain_matches_db(minter, mint_app)


def test_every_full_transaction_goes_out_from_one_claim_at_once(mint_app, make_minter) -> None:
    minter = make_minter()
    capacity = minter.pipeline.wallets_per_transaction
    with mint_app.sessions() as session:
        update_settings(session, mint_app.settings.tokenization, {"batch_size": 1}, by="t")
        producers = seed_producers(session, 5 * capacity + 2)
        seed_readings(session, producers, 1)
        accepted = utcnow()  # just now: only full transactions are due, nothing has waited
        session.execute(update(MeterReading).values(submitted_at=accepted))
        session.commit()
    minter.pipeline.accounts.ensure([p.wallet for p in producers])
    report = minter.pipeline.run_cycle()
    assert report.batches_sent == 5 and report.confirmed == 5
    assert count_by_status(mint_app) == {"minted": 5 * capacity, "pending": 2}
    # The two left over wait for company until the oldest has waited max_wait (60 s).
    assert report.next_due_at == accepted + timedelta(seconds=60)
    with mint_app.sessions() as session:
        claims = session.scalars(
            select(MintBatch.created_at).where(MintBatch.kind == "mint").distinct()
        ).all()
    assert len(claims) == 1  # one claim, not one per batch_size readings


def test_a_ratio_change_applies_to_the_next_cycle_and_is_recorded(mint_app, make_minter) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        producers = seed_producers(session, 1)
        seed_readings(session, producers, 2, kwh_micro=10_500_000)
    minter.pipeline.run_cycle()
    with mint_app.sessions() as session:
        update_settings(
            session, mint_app.settings.tokenization, {"kwh_to_token_ratio": "2.5"}, by="admin"
        )
        seed_readings(session, producers, 1, kwh_micro=10_500_000, start=T0 + timedelta(days=3))
    minter.pipeline.run_cycle()
    with mint_app.sessions() as session:
        rows = session.execute(
            select(MeterReading.ratio_applied, MeterReading.token_base_units).order_by(
                MeterReading.id
            )
        ).all()
    assert rows == [
        (Decimal("1.0"), 10_500_000_000),
        (Decimal("1.0"), 10_500_000_000),
        (Decimal("2.5"), 26_250_000_000),
    ]
    assert_chain_matches_db(minter, mint_app)


def test_auto_mint_off_waits_for_an_admin(mint_app, make_minter) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        update_settings(
            session, mint_app.settings.tokenization, {"auto_mint_enabled": False}, by="admin"
        )
        seed_readings(session, seed_producers(session, 2), 2)
        admin = User(username="root", role="admin", password_hash="-")
        session.add(admin)
        session.commit()
    assert minter.pipeline.run_cycle().claimed_readings == 0
    assert count_by_status(mint_app) == {"pending": 4}
    with mint_app.sessions() as session:
        request_reading_mint(session, 3, admin)
    minter.pipeline.run_cycle()
    assert count_by_status(mint_app) == {"pending": 3, "minted": 1}
    with mint_app.sessions() as session:
        request_mint_now(session, admin)
    minter.pipeline.run_cycle()
    assert count_by_status(mint_app) == {"minted": 4}
    assert_chain_matches_db(minter, mint_app)


def test_a_transaction_that_fails_on_chain_is_retried_with_backoff(mint_app, make_minter) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        update_settings(
            session,
            mint_app.settings.tokenization,
            {"max_retries": 1, "retry_base_secs": 1},
            by="admin",
        )
        seed_readings(session, seed_producers(session, 2), 1)
    # MintToChecked with the wrong decimals: a real on-chain error, landed (fee paid, no mint).
    factory = minter.pipeline.target.factory
    wrong = SplMintTo(factory.mint, factory.authority, factory.token_program, decimals=3)
    broken = MintPipeline(
        mint_app.sessions,
        mint_app.config,
        MintTarget(minter.chain, minter.pipeline.target.authority, wrong, airdrop=True),
        poll_interval=0.05,
    )
    report = broken.run_cycle()
    assert report.failed == 1 and report.confirmed == 0
    with mint_app.sessions() as session:
        readings = session.scalars(select(MeterReading)).all()
        assert {(r.status, r.attempts) for r in readings} == {("pending", 1)}
        assert all(r.next_attempt_at is not None for r in readings)
        failed = session.scalars(select(Event).where(Event.type == "mint_failed")).one()
        assert failed.payload["will_retry"] is True
        session.execute(update(MeterReading).values(next_attempt_at=None))
        session.commit()
    broken.run_cycle()
    assert count_by_status(mint_app) == {"failed": 2}
    assert minter.chain.token_supply(minter.grx.address) == minter.grx.bootstrap_supply
    # An admin retries; the healthy pipeline mints them.
    with mint_app.sessions() as session:
        admin = User(username="root", role="admin", password_hash="-")
        session.add(admin)
        session.commit()
        assert retry_failed_readings(session, admin) == 2
    minter.pipeline.run_cycle()
    assert count_by_status(mint_app) == {"minted": 2}
    assert_chain_matches_db(minter, mint_app)


def test_recovery_confirms_a_batch_sent_before_a_crash(mint_app, make_minter) -> None:
    crashed = make_minter()
    with mint_app.sessions() as session:
        seed_readings(session, seed_producers(session, 3), 2)
    # Claim, sign, persist and send, then "crash" before confirming.
    with mint_app.sessions() as session:
        claimed = claim_pending(
            session, mint_app.config(), now=crashed.pipeline.clock(), wallets_per_transaction=18
        )
    crashed.pipeline._sign_and_send(claimed, CycleReport())
    assert count_by_status(mint_app) == {"minting": 6}
    restarted = make_minter()
    report = CycleReport()
    restarted.pipeline.recover(report, release_all_planned=True)
    assert report.confirmed == 1
    assert count_by_status(mint_app) == {"minted": 6}
    assert_chain_matches_db(restarted, mint_app)


def test_a_pipeline_needs_a_place_in_flight() -> None:
    # With none, a cycle could claim nothing and would wait for room forever.
    with pytest.raises(ValueError, match="max_in_flight must be at least 1, not 0"):
        MintPipeline(None, None, None, max_in_flight=0)  # type: ignore[arg-type]
