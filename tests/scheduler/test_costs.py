"""Every lamport accounted, on the real node: fees and rent from the chain, the payer watched."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from sqlalchemy import select

from core.chain.mint_setup import ensure_token_accounts
from core.db.models import ChainCost, Event, FeePayer, MeterReading, MintBatch
from core.settings_store import update_settings
from tests.scheduler.conftest import count_by_status
from tests.support.localnet import wait_for
from tests.support.seed import T0, seed_producers, seed_readings

PRICE = 10_000  # micro-lamports per compute unit


def asked_units(raw_tx: bytes) -> int:
    """The compute-unit limit a signed transaction asks for, decoded from its bytes."""
    tx = VersionedTransaction.from_bytes(raw_tx)
    data = bytes(tx.message.instructions[0].data)
    assert data[0] == 2  # SetComputeUnitLimit
    return int.from_bytes(data[1:5], "little")


def test_the_fee_and_rent_recorded_are_the_chains(mint_app, make_minter) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        tokenization = mint_app.settings.tokenization
        update_settings(session, tokenization, {"priority_fee_microlamports": PRICE}, by="t")
        seed_readings(session, seed_producers(session, 3), 2)
    payer = minter.pipeline.fee_payer
    before = minter.chain.sol_balance(payer)
    report = minter.pipeline.run_cycle()
    assert report.confirmed == 1 and report.operations_settled == 1
    after = minter.chain.sol_balance(payer)
    with mint_app.sessions() as session:
        operations = session.scalars(select(MintBatch).order_by(MintBatch.id)).all()
        ledger = session.scalars(select(ChainCost)).all()
    assert [op.kind for op in operations] == ["mint", "token_accounts"]
    for op in operations:  # 5,000 per signature + ceil(limit x price / 10^6), by hand
        assert op.fee_lamports == 5_000 + -(-asked_units(op.raw_tx) * PRICE // 1_000_000)
        assert op.compute_units is not None and 0 < op.compute_units <= asked_units(op.raw_tx)
    accounts = operations[1]
    assert accounts.rent_lamports == 3 * 2_039_280  # three new token accounts
    assert operations[0].rent_lamports == 0  # minting locks no rent
    assert sum(c.lamports for c in ledger) == before - after  # the chain's own balance change
    assert {c.operation_id for c in ledger} == {op.id for op in operations}
    for op in operations:  # and what the node itself says it charged, asked here
        assert op.fee_lamports == chain_fee(minter.chain.url, op.signature)


def chain_fee(url: str, signature: str) -> int:
    """meta.fee of a landed transaction, from the node's getTransaction (not our client)."""
    found = Client(url).get_transaction(
        Signature.from_string(signature), "base64", Confirmed, max_supported_transaction_version=0
    )
    assert found.value is not None and found.value.transaction.meta is not None
    return found.value.transaction.meta.fee


def test_a_low_balance_is_told_once_per_crossing(mint_app, make_minter) -> None:
    minter = make_minter()
    tokenization = mint_app.settings.tokenization

    def set_min(sol: str) -> None:
        with mint_app.sessions() as session:
            update_settings(session, tokenization, {"fee_payer_min_sol": sol}, by="t")

    def alerts() -> list[dict]:
        with mint_app.sessions() as session:
            rows = session.scalars(
                select(Event).where(Event.type == "fee_payer_low").order_by(Event.id)
            )
            return [event.payload for event in rows]

    balance = minter.chain.sol_balance(minter.pipeline.fee_payer)
    above = format(Decimal(balance + 1).scaleb(-9), "f")  # one lamport more than it holds
    set_min(above)
    for _ in range(3):
        minter.pipeline.run_cycle()
    assert [(a["balance_lamports"], a["min_lamports"]) for a in alerts()] == [
        (balance, balance + 1)
    ]
    set_min("0.5")  # back above the minimum: the alert clears, nothing is told
    minter.pipeline.run_cycle()
    with mint_app.sessions() as session:
        row = session.get(FeePayer, str(minter.pipeline.fee_payer))
        assert (row.lamports, row.low, row.min_lamports) == (balance, False, 500_000_000)
    assert len(alerts()) == 1
    set_min(above)  # and below again: told again, once
    minter.pipeline.run_cycle()
    minter.pipeline.run_cycle()
    assert len(alerts()) == 2 and alerts()[1]["fee_payer"] == str(minter.pipeline.fee_payer)


def test_the_low_balance_event_follows_the_payers_real_balance_across_each_crossing(
    mint_app, make_minter
) -> None:
    """The balance itself crosses the minimum: spent by mints, topped up by a transfer.

    Without lookup tables, so that each round spends exactly one signature's fee.
    """
    minter = make_minter(lookup_tables=False)
    pipeline, chain, payer = minter.pipeline, minter.chain, minter.pipeline.fee_payer
    with mint_app.sessions() as session:
        producers = seed_producers(session, 2, namespace="low")
    rounds = iter(range(10))

    def mint_a_round() -> None:
        with mint_app.sessions() as session:
            seed_readings(session, producers, 1, start=T0 + timedelta(days=next(rounds)))
        assert pipeline.run_cycle().confirmed == 1

    def alerts() -> list[tuple[int, int]]:
        with mint_app.sessions() as session:
            rows = session.scalars(
                select(Event).where(Event.type == "fee_payer_low").order_by(Event.id)
            )
            return [(e.payload["balance_lamports"], e.payload["min_lamports"]) for e in rows]

    mint_a_round()  # the token accounts exist now: each later round spends one fee only
    held = chain.sol_balance(payer)
    minimum = held - 1  # one lamport under what the payer holds
    with mint_app.sessions() as session:
        update_settings(
            session,
            mint_app.settings.tokenization,
            {"fee_payer_min_sol": format(Decimal(minimum).scaleb(-9), "f")},
            by="t",
        )
    pipeline.run_cycle()
    assert alerts() == []  # above the minimum
    mint_a_round()  # read before it spent: still nothing told
    pipeline.run_cycle()  # down: 5,000 lamports spent (one signature, no priority fee)
    assert chain.sol_balance(payer) == held - 5_000
    assert alerts() == [(held - 5_000, minimum)]
    mint_a_round()  # stays down: no repeat, however many cycles
    pipeline.run_cycle()
    pipeline.run_cycle()
    assert alerts() == [(held - 5_000, minimum)]
    chain.request_airdrop(payer, 10_000)  # up: exactly back to what it held
    pipeline.run_cycle()
    with mint_app.sessions() as session:
        assert session.get(FeePayer, str(payer)).low is False
    assert len(alerts()) == 1  # going up is not told
    mint_a_round()
    pipeline.run_cycle()  # and down again: told again, once
    assert alerts() == [(held - 5_000, minimum), (held - 5_000, minimum)]


def test_without_account_creation_a_wallet_lacking_one_is_held_not_lost(
    mint_app, make_minter
) -> None:
    minter = make_minter()
    with mint_app.sessions() as session:
        update_settings(
            session,
            mint_app.settings.tokenization,
            {"create_token_accounts": False, "polling_interval_secs": 1},
            by="t",
        )
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 2, kwh_micro=1_500_000)
    target = minter.pipeline.target

    def operator_creates(wallet: str) -> None:  # as an operator would, outside the scheduler
        owner = Pubkey.from_string(wallet)
        ensure_token_accounts(
            minter.chain,
            target.authority,
            [owner],
            target.factory.mint,
            target.factory.token_program,
        )

    operator_creates(producers[0].wallet)
    minter.pipeline.run_cycle()
    with mint_app.sessions() as session:
        readings = session.scalars(select(MeterReading).order_by(MeterReading.id)).all()
        created = session.scalars(select(MintBatch).where(MintBatch.kind != "mint")).all()
        told = session.scalars(select(Event).where(Event.type == "mint_failed")).all()
    assert [r.status for r in readings] == ["minted", "minted", "pending", "pending"]
    assert all("TOKENIZATION_CREATE_TOKEN_ACCOUNTS=false" in r.last_error for r in readings[2:])
    assert created == []  # the scheduler created nothing
    assert [e.payload["reading_ids"] for e in told] == [[readings[2].id, readings[3].id]]
    missing = minter.pipeline.accounts.address(producers[1].wallet)
    assert minter.chain.accounts_exist([missing]) == [False]

    operator_creates(producers[1].wallet)
    wait_for(
        lambda: minter.pipeline.run_cycle() and count_by_status(mint_app) == {"minted": 4},
        timeout=20,
        what="the held readings to mint once the account exists",
    )
    assert minter.chain.token_balance(missing) == 2 * 1_500_000_000
