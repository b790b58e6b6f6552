"""The localnet's pure parts, without a node process: clock, tokens, fees, errors, ledger."""

from __future__ import annotations

import base64
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.account import Account
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)

from core.chain.localnet import params
from core.chain.localnet.clock import MAX_PROCESSING_AGE, SlotClock, blockhash_for
from core.chain.localnet.errors import RpcError, describe
from core.chain.localnet.execution import fee_for
from core.chain.localnet.ledger import Ledger, LedgerBusy, TransactionRecord
from core.chain.localnet.tokens import (
    TOKEN_PROGRAM_ID,
    amount_string,
    balance_snapshot,
    expand_snapshot,
    parse_token_account,
)
from tests.support.localnet import memo_ix

SEED = bytes(range(32))


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token_account(mint: Pubkey, owner: Pubkey, amount: int) -> Account:
    data = bytes(mint) + bytes(owner) + amount.to_bytes(8, "little")
    data += bytes(36) + b"\x01" + bytes(165 - 109)  # no delegate, initialized, the rest empty
    return Account(2_039_280, data, TOKEN_PROGRAM_ID)


@pytest.mark.parametrize(
    ("amount", "decimals", "text"),
    [
        (0, 9, "0"),
        (1, 9, "0.000000001"),
        (2_010_000_000, 9, "2.01"),
        (123_456_789_012, 9, "123.456789012"),
        (5, 0, "5"),
        (1_000_000, 6, "1"),
    ],
)
def test_amount_string_is_exact_and_trimmed(amount: int, decimals: int, text: str) -> None:
    assert amount_string(amount, decimals) == text


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=9))
def test_amount_string_round_trips(amount: int, decimals: int) -> None:
    assert Decimal(amount_string(amount, decimals)) * 10**decimals == amount


def test_token_balance_snapshot_round_trips() -> None:
    mint, owner = Pubkey.new_unique(), Pubkey.new_unique()
    accounts = [None, Account(10, b"", Pubkey.default()), token_account(mint, owner, 42)]
    snapshot = balance_snapshot(accounts)
    (balance,) = expand_snapshot(snapshot, lambda _: 9)
    assert (balance.account_index, balance.mint, balance.owner) == (2, mint, owner)
    assert balance.ui_token_amount.amount == "42"
    assert balance.program_id == TOKEN_PROGRAM_ID
    assert expand_snapshot(snapshot, lambda _: None) == []  # an unknown mint is left out
    parsed = parse_token_account(accounts[2])
    assert parsed is not None and parsed.amount == 42 and parsed.delegate is None


def test_blockhashes_are_derived_and_valid_for_150_blocks() -> None:
    clock = SlotClock(SEED, 0, 400, FakeTime())
    first = clock.blockhash(0)
    assert first == blockhash_for(SEED, 0) != blockhash_for(bytes(32), 0)
    assert clock.is_valid(first, at_slot=MAX_PROCESSING_AGE)
    assert not clock.is_valid(first, at_slot=MAX_PROCESSING_AGE + 1)
    assert not clock.is_valid(Hash.new_unique())
    assert not clock.is_valid(clock.blockhash(5), at_slot=4)  # not yet produced at slot 4


def test_the_clock_follows_time_and_rebuilds_its_window_after_a_restart() -> None:
    time = FakeTime()
    clock = SlotClock(SEED, 0, 400, time)
    assert not clock.advance()
    time.now += 0.4 * 10 + 0.001
    assert clock.advance() and clock.slot == 10
    time.now += 400  # a long stall: only the last 300 slots are remembered
    clock.advance()
    assert clock.slot == 1010 and clock.slot_of(clock.blockhash(5)) is None

    restarted = SlotClock(SEED, 1011, 400, FakeTime())
    assert restarted.is_valid(clock.blockhash(1010))
    assert restarted.slot_of(clock.blockhash(1011 - 299)) == 1011 - 299


def test_confirmations_and_commitment_views() -> None:
    time = FakeTime()
    clock = SlotClock(SEED, 100, 400, time)
    assert clock.confirmation(100) == (0, "processed")
    assert clock.confirmation(99) == (1, "confirmed")
    assert clock.confirmation(68) == (None, "finalized")
    assert (clock.view_slot("processed"), clock.view_slot("confirmed")) == (100, 99)
    assert clock.view_slot("finalized") == 68


def test_fees_count_signatures_and_priority() -> None:
    payer = Keypair()
    memo = memo_ix("x", payer.pubkey())
    plain = Message.new_with_blockhash([memo], payer.pubkey(), Hash.default())
    assert fee_for(plain) == 5000
    priced = Message.new_with_blockhash(
        [set_compute_unit_limit(300_000), set_compute_unit_price(1_000_001), memo],
        payer.pubkey(),
        Hash.default(),
    )
    assert fee_for(priced) == 5000 + 300_001  # ceil(1_000_001 * 300_000 / 1e6)


def test_errors_read_like_agave() -> None:
    custom = TransactionErrorInstructionError(0, InstructionErrorCustom(4))
    assert describe(custom) == "Error processing Instruction 0: custom program error: 0x4"
    assert describe(TransactionErrorFieldless.BlockhashNotFound) == "Blockhash not found"


def test_decoding_refuses_oversized_transactions() -> None:
    with pytest.raises(RpcError, match=r"too large: 1233 bytes \(max: 1232 bytes\)"):
        params.decode_wire(base64.b64encode(bytes(1233)).decode(), "base64")
    with pytest.raises(RpcError, match=r"base64 encoded .* too large: 1648 bytes"):
        params.decode_wire(base64.b64encode(bytes(1236)).decode(), "base64")
    with pytest.raises(RpcError, match=r"base58 encoded .* too large"):
        params.decode_wire("1" * 1684, None)
    with pytest.raises(RpcError, match="failed to deserialize"):
        params.transaction(base64.b64encode(b"\x01\x02").decode(), "base64")


def test_ledger_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    mint, owner, key = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    ledger = Ledger(path)
    seed = ledger.seed
    record = TransactionRecord(b"s" * 64, 7, 1_700_000_000, False, "{}", b"raw")
    ledger.commit_transaction(record, [(key, token_account(mint, owner, 5))])
    ledger.save_slot(9)
    ledger.close()

    again = Ledger(path)
    assert (again.seed, again.slot, again.transaction_count, again.is_new) == (seed, 9, 1, False)
    status = again.status(b"s" * 64)
    assert status is not None and (status.slot, status.failed) == (7, False)
    assert again.transaction(b"s" * 64) == record
    assert dict(again.accounts())[key] == token_account(mint, owner, 5)
    assert again.index.token_accounts("token_owner", owner) == [key]
    assert again.index.token_accounts("token_owner", owner, Pubkey.new_unique()) == []
    with pytest.raises(LedgerBusy):
        Ledger(path)
    again.close()


def test_a_failed_ledger_write_stops_the_writer(tmp_path: Path) -> None:
    stopped = threading.Event()
    ledger = Ledger(tmp_path / "ledger.sqlite3", on_failure=lambda _: stopped.set())
    record = TransactionRecord(b"d" * 64, 1, 0, False, "{}", b"")
    ledger.commit_transaction(record, []).result()
    duplicate = ledger.commit_transaction(record, [])  # violates the unique signature
    with pytest.raises(Exception, match="UNIQUE"):
        duplicate.result(timeout=5)
    assert stopped.wait(5)


_V1_SCHEMA = """
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 0), slot INTEGER NOT NULL,
    transaction_count INTEGER NOT NULL);
CREATE TABLE accounts (pubkey BLOB PRIMARY KEY, account BLOB NOT NULL, token_owner BLOB,
    token_mint BLOB) WITHOUT ROWID;
CREATE TABLE transactions (id INTEGER PRIMARY KEY, signature BLOB NOT NULL UNIQUE,
    slot INTEGER NOT NULL, block_time INTEGER NOT NULL, failed INTEGER NOT NULL,
    meta TEXT NOT NULL, raw BLOB NOT NULL, pre_tokens BLOB NOT NULL, post_tokens BLOB NOT NULL);
"""


def test_a_version_1_ledger_gains_its_indexes_when_opened(tmp_path: Path) -> None:
    """A ledger written before the explorer indexes existed is upgraded in place."""
    path = tmp_path / "ledger.sqlite3"
    payer, mint, owner, key = (
        Keypair(),
        Pubkey.new_unique(),
        Pubkey.new_unique(),
        Pubkey.new_unique(),
    )
    message = Message.new_with_blockhash(
        [memo_ix("old", payer.pubkey())], payer.pubkey(), Hash.default()
    )
    tx = VersionedTransaction(message, [payer])
    db = sqlite3.connect(path)
    db.executescript(_V1_SCHEMA)
    db.execute("INSERT INTO ledger_meta VALUES ('seed', ?), ('schema', ?)", (SEED, b"1"))
    db.execute("INSERT INTO clock VALUES (0, 40, 1)")
    db.execute(
        "INSERT INTO accounts VALUES (?, ?, ?, ?)",
        (bytes(key), bytes(token_account(mint, owner, 5)), bytes(owner), bytes(mint)),
    )
    meta = '{"loadedAddresses": {"writable": [], "readonly": []}}'
    db.execute(
        "INSERT INTO transactions VALUES (1, ?, 30, 1700000000, 0, ?, ?, x'', x'')",
        (bytes(tx.signatures[0]), meta, bytes(tx)),
    )
    db.commit()
    db.close()

    ledger = Ledger(path)
    try:
        assert ledger.is_new is False and ledger.slot == 40
        assert [k for k, _ in ledger.index.owned_by(TOKEN_PROGRAM_ID)] == [key]
        assert ledger.index.token_accounts("token_mint", mint) == [key]
        found = ledger.index.signatures_for(
            payer.pubkey(), before=None, until=None, max_slot=99, limit=9
        )
        assert [item.record.signature for item in found] == [bytes(tx.signatures[0])]
        assert [s.slot for s in ledger.index.slot_starts()] == [0]
        assert ledger.index.total_lamports() == token_account(mint, owner, 5).lamports
    finally:
        ledger.close()
