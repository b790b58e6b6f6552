"""Lookup tables on the real node: recurring wallets move to v0 transactions, exactly once.

Expected balances come from the seed's own integer arithmetic (micro-kWh x 1,000
base units at ratio 1 and 9 decimals), never from the code under test; costs
are checked against the chain's accounts and the fee rule.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from sqlalchemy import func, select

from core.chain.client import ChainClient
from core.chain.errors import AlreadyProcessed
from core.db.models import ChainCost, LookupTableEntry, MintBatch
from core.db.models import LookupTable as LookupTableRow
from core.minting.lookup_tables import RECURRING_MINTS
from core.minting.outbox import CycleReport
from core.minting.pipeline import MintPipeline, MintTarget
from tests.scheduler.conftest import count_by_status
from tests.support.rpc_gate import RpcGate
from tests.support.seed import T0, seed_producers, seed_readings

WALLETS = 30
ATA_RENT = 2_039_280  # a 165-byte token account: (128 + 165) x 3,480 x 2 lamports


def seed_round(app, producers, round_: int) -> int:
    """One reading per wallet, a day apart per round; returns the base units of the round."""
    with app.sessions() as session:
        seed_readings(session, producers, 1, start=T0 + timedelta(days=round_))
    return sum(1 + (index * 7_919) % 25_000_000 for index in range(len(producers))) * 1_000


def run_until(pipeline, predicate, *, timeout: float = 30.0, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pipeline.run_cycle()
        pipeline.stop.wait(0.05)


def active_entries(app) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).where(LookupTableEntry.active.is_(True)))


def mint_batches(app, **where) -> list[MintBatch]:
    with app.sessions() as session:
        statement = select(MintBatch).where(MintBatch.kind == "mint").order_by(MintBatch.id)
        for column, value in where.items():
            statement = statement.where(getattr(MintBatch, column) == value)
        return list(session.scalars(statement))


@pytest.fixture
def tabled(mint_app, make_minter):
    """WALLETS wallets minted to RECURRING_MINTS times in legacy, then all in one active table."""
    minter = make_minter()
    with mint_app.sessions() as session:
        producers = seed_producers(session, WALLETS)
    expected = 0
    for round_ in range(RECURRING_MINTS):
        expected += seed_round(mint_app, producers, round_)
        minter.pipeline.run_cycle()
    run_until(
        minter.pipeline,
        lambda: active_entries(mint_app) == WALLETS,
        what="every wallet's account active in a lookup table",
    )
    assert {b.version for b in mint_batches(mint_app)} == {"legacy"}
    return minter, producers, expected


def test_a_lookup_table_mint_lands_and_credits_exactly(mint_app, tabled) -> None:
    minter, producers, expected = tabled
    expected += seed_round(mint_app, producers, RECURRING_MINTS)
    report = minter.pipeline.run_cycle()
    assert report.claimed_readings == WALLETS and report.confirmed == 1
    [v0] = mint_batches(mint_app, version="v0")
    assert v0.status == "confirmed" and v0.mint_count == WALLETS
    tx = VersionedTransaction.from_bytes(v0.raw_tx)
    assert len(v0.raw_tx) <= 1232 and len(tx.message.address_table_lookups) == 1
    assert len(tx.message.address_table_lookups[0].writable_indexes) == WALLETS + 1  # + mint
    assert count_by_status(mint_app) == {"minted": WALLETS * (RECURRING_MINTS + 1)}
    # Each wallet: its three readings, from the seed formula (same amount each round).
    for index, producer in enumerate(producers):
        account = minter.pipeline.accounts.address(producer.wallet)
        units = (1 + (index * 7_919) % 25_000_000) * 1_000
        assert minter.chain.token_balance(account) == units * (RECURRING_MINTS + 1)
    supply = minter.chain.token_supply(minter.grx.address)
    assert supply == minter.grx.bootstrap_supply + expected
    assert v0.fee_lamports == 5_000  # one signature, no priority fee
    signature = Signature.from_string(v0.signature)
    landed = Client(minter.chain.url).get_transaction(
        signature, "base64", Confirmed, max_supported_transaction_version=0
    )
    assert landed.value.transaction.meta.fee == v0.fee_lamports  # the node's own figure


def test_every_lamport_of_accounts_and_tables_is_recorded(mint_app, tabled) -> None:
    minter, _, _ = tabled
    with mint_app.sessions() as session:
        operations = session.scalars(select(MintBatch).where(MintBatch.signature.is_not(None)))
        landed = [op for op in operations if op.status in ("confirmed", "failed")]
        ledger = session.scalars(select(ChainCost)).all()
    assert all(op.fee_lamports == 5_000 for op in landed)  # every one signed once, no price
    rent = {(c.operation_kind, c.account): c.lamports for c in ledger if c.kind == "rent"}
    accounts = [a for kind, a in rent if kind == "token_accounts"]
    assert len(accounts) == WALLETS and all(
        rent[("token_accounts", a)] == ATA_RENT for a in accounts
    )
    tables = {a for kind, a in rent if kind == "lookup_table"}
    for table in tables:  # the table's lamports are the rent its steps deposited
        deposited = sum(c.lamports for c in ledger if c.kind == "rent" and c.account == table)
        held = minter.chain.account(Pubkey.from_string(table)).lamports
        entries = 1 + WALLETS  # the mint and the accounts
        assert deposited == held == (128 + 56 + 32 * entries) * 6_960
    fees = sum(c.lamports for c in ledger if c.kind == "fee")
    assert fees == 5_000 * len(landed)


def test_a_table_not_yet_active_is_not_used(mint_app, make_minter) -> None:
    minter = make_minter()
    pipeline = minter.pipeline
    with mint_app.sessions() as session:
        producers = seed_producers(session, 5)
    report = CycleReport()
    for round_ in range(RECURRING_MINTS):  # minted by hand: no table upkeep in between
        seed_round(mint_app, producers, round_)
        claim, config = pipeline._claim(None)
        pipeline.settle(pipeline._sign_and_send(claim.batches, report, config), report)
    assert report.confirmed == RECURRING_MINTS
    sent = pipeline.lookup.upkeep(report)  # the table's creation, signed and sent
    assert [item.kind for item in sent] == ["lookup_table"]
    seed_round(mint_app, producers, RECURRING_MINTS)
    claim, _ = pipeline._claim(None)  # the creation is not even confirmed: legacy
    assert [b.tables for b in claim.batches] == [()]
    pipeline._release(claim.batches, report, reason="test")
    pipeline.settle(sent, report)  # confirmed now, its warm-up not yet checked
    pipeline.lookup._apply_settled()
    with mint_app.sessions() as session:
        entries = session.scalars(select(LookupTableEntry)).all()
    assert {(e.confirmed_slot is not None, e.active) for e in entries} == {(True, False)}
    claim, _ = pipeline._claim(None)
    assert [b.tables for b in claim.batches] == [()]  # confirmed is not active
    pipeline._release(claim.batches, report, reason="test")
    run_until(pipeline, lambda: active_entries(mint_app) == 5, what="activation")
    assert {b.version for b in mint_batches(mint_app)} == {"legacy"}
    seed_round(mint_app, producers, RECURRING_MINTS + 1)
    pipeline.run_cycle()
    assert [b.version for b in mint_batches(mint_app)][-1] == "v0"
    assert count_by_status(mint_app) == {"minted": 5 * (RECURRING_MINTS + 2)}


def test_a_crash_between_persisting_and_sending_v0_resends_the_same_bytes_once(
    mint_app, tabled, make_minter
) -> None:
    crashed, producers, expected = tabled
    expected += seed_round(mint_app, producers, RECURRING_MINTS)
    claim, config = crashed.pipeline._claim(None)
    prepared, blockhash = crashed.pipeline._sign(claim.batches, CycleReport(), config)
    [stored] = crashed.pipeline.outbox.persist(prepared, blockhash)  # committed, never sent
    assert VersionedTransaction.from_bytes(stored.raw_tx).message.address_table_lookups
    assert crashed.chain.signature_statuses([stored.signature]) == [None]

    restarted = make_minter()
    report = CycleReport()
    restarted.pipeline.recover(report, release_all_planned=True)
    assert report.confirmed == 1
    [v0] = mint_batches(mint_app, version="v0")
    assert (v0.signature, v0.raw_tx) == (str(stored.signature), stored.raw_tx)
    landed = Client(restarted.chain.url).get_transaction(
        stored.signature, "base64", Confirmed, max_supported_transaction_version=0
    )
    assert bytes(landed.value.transaction.transaction) == stored.raw_tx  # the very same bytes
    with pytest.raises(AlreadyProcessed):
        restarted.chain.send_raw(stored.raw_tx)  # and they can never land twice
    assert count_by_status(mint_app) == {"minted": WALLETS * (RECURRING_MINTS + 1)}
    supply = restarted.chain.token_supply(restarted.grx.address)
    assert supply == restarted.grx.bootstrap_supply + expected


def test_a_separate_fee_payer_pays_everything_and_owns_the_tables(mint_app, make_minter) -> None:
    minter = make_minter()
    payer = Keypair()
    minter.chain.request_airdrop(payer.pubkey(), 20 * 10**9)
    target = minter.pipeline.target
    pipeline = MintPipeline(
        mint_app.sessions,
        mint_app.config,
        MintTarget(minter.chain, target.authority, target.factory, payer=payer),
        poll_interval=0.05,
        payer_read_interval=0.0,
    )
    authority_before = minter.chain.sol_balance(target.authority.pubkey)
    with mint_app.sessions() as session:
        producers = seed_producers(session, 4, namespace="payer")
    for round_ in range(RECURRING_MINTS):
        seed_round(mint_app, producers, round_)
        pipeline.run_cycle()
    run_until(pipeline, lambda: active_entries(mint_app) == 4, what="activation")
    seed_round(mint_app, producers, RECURRING_MINTS)
    pipeline.run_cycle()
    assert [b.version for b in mint_batches(mint_app)][-1] == "v0"
    with mint_app.sessions() as session:
        landed = session.scalars(select(MintBatch).where(MintBatch.fee_lamports.is_not(None))).all()
        fee_accounts = set(
            session.scalars(select(ChainCost.account).where(ChainCost.kind == "fee"))
        )
    # 5,000 per signature: mints need the payer and the mint authority, the rest the payer.
    assert {(op.kind, op.fee_lamports) for op in landed} == {
        ("mint", 10_000),
        ("token_accounts", 5_000),
        ("lookup_table", 5_000),
    }
    assert fee_accounts == {str(payer.pubkey())}
    [table] = {entry.table_address for entry in _entries(mint_app)}
    [on_chain] = minter.chain.lookup_tables([Pubkey.from_string(table)])
    assert on_chain.authority == payer.pubkey()
    assert minter.chain.sol_balance(target.authority.pubkey) == authority_before  # paid nothing


def _entries(app) -> list[LookupTableEntry]:
    with app.sessions() as session:
        return list(session.scalars(select(LookupTableEntry)))


@pytest.fixture
def gated(mint_app, make_minter, localnet):
    """A pipeline whose node is behind an RpcGate (the shared node's own minter, its keys)."""
    minter = make_minter()
    gate = RpcGate(localnet.url).start()
    chain = ChainClient(gate.url)
    target = minter.pipeline.target
    pipeline = MintPipeline(
        mint_app.sessions,
        mint_app.config,
        MintTarget(chain, target.authority, target.factory),
        poll_interval=0.05,
        payer_read_interval=0.0,
    )
    yield minter, pipeline, gate
    chain.close()
    gate.stop()


def table_operations(app) -> list[MintBatch]:
    with app.sessions() as session:
        statement = select(MintBatch).where(MintBatch.kind == "lookup_table")
        return list(session.scalars(statement.order_by(MintBatch.id)))


def credited_exactly(minter, producers, rounds: int) -> bool:
    """Each wallet holds its readings of `rounds` rounds (the seed formula), nothing more."""
    accounts = minter.pipeline.accounts
    return all(
        minter.chain.token_balance(accounts.address(p.wallet))
        == (1 + (index * 7_919) % 25_000_000) * 1_000 * rounds
        for index, p in enumerate(producers)
    )


def test_a_node_error_in_table_upkeep_pauses_tables_for_the_cycle_not_minting(
    mint_app, gated
) -> None:
    minter, pipeline, gate = gated
    gate.refuse = lambda method: method == "getSlot"  # only table upkeep asks for the slot
    with mint_app.sessions() as session:
        producers = seed_producers(session, 5, namespace="slotless")
    for round_ in range(RECURRING_MINTS):
        seed_round(mint_app, producers, round_)
        report = pipeline.run_cycle()
        assert report.confirmed == 1 and not report.unresolved
    # The second cycle made the wallets candidates; creating their table needs the slot.
    assert gate.calls["getSlot"] == 1  # tried once, then paused for the rest of the cycle
    assert [e for e in report.errors if e.startswith("lookup tables:")]
    assert table_operations(mint_app) == []  # nothing planned was left behind
    assert count_by_status(mint_app) == {"minted": 5 * RECURRING_MINTS}
    assert credited_exactly(minter, producers, RECURRING_MINTS)

    seed_round(mint_app, producers, RECURRING_MINTS)  # still failing: the next cycle mints
    report = pipeline.run_cycle()
    assert report.confirmed == 1 and gate.calls["getSlot"] == 2  # tried again, once
    assert {b.version for b in mint_batches(mint_app)} == {"legacy"}
    assert credited_exactly(minter, producers, RECURRING_MINTS + 1)

    gate.refuse = lambda method: False  # the node recovers: table work resumes
    run_until(pipeline, lambda: active_entries(mint_app) == 5, what="activation")
    seed_round(mint_app, producers, RECURRING_MINTS + 1)
    pipeline.run_cycle()
    assert mint_batches(mint_app)[-1].version == "v0"
    assert count_by_status(mint_app) == {"minted": 5 * (RECURRING_MINTS + 2)}
    assert credited_exactly(minter, producers, RECURRING_MINTS + 2)


def test_a_table_step_that_cannot_be_sent_is_released_and_minting_goes_on(mint_app, gated) -> None:
    minter, pipeline, gate = gated

    def planned_step() -> bool:
        return any(op.status == "planned" for op in table_operations(mint_app))

    # The node fails the blockhash only while a table step is planned: after the step
    # was committed, before it could be built and signed.
    gate.refuse = lambda method: method == "getLatestBlockhash" and planned_step()
    with mint_app.sessions() as session:
        producers = seed_producers(session, 5, namespace="unsent")
    for round_ in range(RECURRING_MINTS):
        seed_round(mint_app, producers, round_)
        report = pipeline.run_cycle()
        assert report.confirmed == 1
    [step] = table_operations(mint_app)
    assert step.status == "expired" and step.signature is None
    assert step.error == "released: lookup table step not sent"
    assert [e for e in report.errors if e.startswith("lookup tables:")]
    assert credited_exactly(minter, producers, RECURRING_MINTS)

    seed_round(mint_app, producers, RECURRING_MINTS)
    report = pipeline.run_cycle()  # the released step's entries drop, its wallets retry
    assert report.confirmed == 1 and credited_exactly(minter, producers, RECURRING_MINTS + 1)
    assert [op.status for op in table_operations(mint_app)] == ["expired", "expired"]

    gate.refuse = lambda method: False
    run_until(pipeline, lambda: active_entries(mint_app) == 5, what="activation")
    with mint_app.sessions() as session:
        tables = session.scalars(select(LookupTableRow)).all()
    # Two creations never sent (only the mint is left counted in them), then the table.
    assert [(t.status, t.entries) for t in tables] == [
        ("abandoned", 1),
        ("abandoned", 1),
        ("ready", 6),
    ]
    seed_round(mint_app, producers, RECURRING_MINTS + 1)
    pipeline.run_cycle()
    assert mint_batches(mint_app)[-1].version == "v0"
    assert credited_exactly(minter, producers, RECURRING_MINTS + 2)


def test_a_table_the_chain_does_not_hold_sends_its_wallet_to_legacy_in_the_same_cycle(
    mint_app, tabled
) -> None:
    minter, producers, expected = tabled
    pipeline = minter.pipeline
    stray = Keypair().pubkey()  # e.g. a database restored next to another cluster
    with mint_app.sessions() as session:
        [real] = session.scalars(select(LookupTableRow)).all()
        session.add(
            LookupTableRow(
                address=str(stray),
                authority=real.authority,
                mint=real.mint,
                status="ready",
                entries=2,
                operation_id=real.operation_id,
                created_at=real.created_at,
            )
        )
        session.flush()
        moved = session.scalars(
            select(LookupTableEntry).where(LookupTableEntry.wallet == producers[0].wallet)
        ).one()
        moved.table_address = str(stray)
        session.commit()
    expected += seed_round(mint_app, producers, RECURRING_MINTS)
    report = pipeline.run_cycle()
    # One cycle: the batch is released, its readings claimed again and minted.
    assert report.released == 1 and report.claimed_readings == 2 * WALLETS
    assert report.confirmed == 2 and not report.errors
    landed = [(b.version, b.mint_count) for b in mint_batches(mint_app, status="confirmed")]
    assert landed[-2:] == [("v0", WALLETS - 1), ("legacy", 1)] or landed[-2:] == [
        ("legacy", 1),
        ("v0", WALLETS - 1),
    ]
    [released] = mint_batches(mint_app, version="v0", status="expired")
    assert released.signature is None and str(stray) in released.error
    # The stray table is abandoned; its wallet was added to the real one again.
    with mint_app.sessions() as session:
        assert session.get(LookupTableRow, str(stray)).status == "abandoned"
        entries = session.scalars(select(LookupTableEntry)).all()
    assert {e.table_address for e in entries} == {real.address}
    assert sorted(e.wallet for e in entries) == sorted(p.wallet for p in producers)
    assert count_by_status(mint_app) == {"minted": WALLETS * (RECURRING_MINTS + 1)}
    for index, producer in enumerate(producers):
        units = (1 + (index * 7_919) % 25_000_000) * 1_000
        account = pipeline.accounts.address(producer.wallet)
        assert minter.chain.token_balance(account) == units * (RECURRING_MINTS + 1)
    assert minter.chain.token_supply(minter.grx.address) == minter.grx.bootstrap_supply + expected


def test_a_table_step_that_fails_on_chain_pauses_table_steps_not_minting(mint_app, gated) -> None:
    minter, pipeline, gate = gated
    # The node answers a slot that is not recent: the creation lands, and fails on chain.
    gate.rewrite["getSlot"] = lambda slot: slot + 100_000
    with mint_app.sessions() as session:
        producers = seed_producers(session, 5, namespace="failing")
    for round_ in range(RECURRING_MINTS):
        seed_round(mint_app, producers, round_)
        assert pipeline.run_cycle().confirmed == 1
    [step] = table_operations(mint_app)
    assert step.status == "failed" and step.error
    signature = Signature.from_string(step.signature)
    landed = Client(minter.chain.url).get_transaction(
        signature, "base64", Confirmed, max_supported_transaction_version=0
    )
    assert landed.value.transaction.meta.err is not None
    assert step.fee_lamports == landed.value.transaction.meta.fee == 5_000  # paid, recorded

    gate.rewrite.clear()  # the node is right again, but a failed step paid a fee: pause
    seed_round(mint_app, producers, RECURRING_MINTS)
    report = pipeline.run_cycle()
    assert report.confirmed == 1 and report.operations_sent == 0
    assert [op.status for op in table_operations(mint_app)] == ["failed"]
    with mint_app.sessions() as session:
        assert [t.status for t in session.scalars(select(LookupTableRow))] == ["abandoned"]
        assert session.scalars(select(LookupTableEntry)).all() == []  # dropped
    assert {b.version for b in mint_batches(mint_app)} == {"legacy"}
    assert count_by_status(mint_app) == {"minted": 5 * (RECURRING_MINTS + 1)}
    assert credited_exactly(minter, producers, RECURRING_MINTS + 1)
