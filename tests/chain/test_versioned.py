"""v0 mint transactions and lookup tables: measured capacity, the warm-up rule, execution.

LiteSVM runs the real Address Lookup Table, SPL Token and Memo programs and
enforces the warm-up rule like a validator, so these need no node.
"""

from __future__ import annotations

import pytest
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import TransactionErrorFieldless

from core.chain.compute_budget import ComputeBudget
from core.chain.errors import TransactionTooLarge
from core.chain.factories import SplMintTo
from core.chain.instructions import (
    TOKEN_PROGRAM_ID,
    U64_MAX,
    CreateAtaParams,
    associated_token_address,
    batch_memo,
    create_associated_token_account_idempotent,
)
from core.chain.lookup_tables import (
    LookupTable,
    build_table_transaction,
    create_table,
    extend_table,
    max_addresses_per_transaction,
)
from core.chain.packing import WORST_CASE_MEMO, max_mints_per_transaction
from core.chain.transactions import PACKET_DATA_SIZE, sign_transaction
from core.chain.versioned import (
    build_versioned_mint_transaction,
    max_mints_per_versioned_transaction,
)
from tests.chain.test_builders import balance, new_mint, run

BUDGET = ComputeBudget()
PRICED = ComputeBudget(micro_lamports_per_unit=1)


def keys(count: int) -> list[Pubkey]:
    return [Keypair().pubkey() for _ in range(count)]


def test_measured_capacities() -> None:
    factory = SplMintTo(Pubkey.new_unique(), Keypair().pubkey(), TOKEN_PROGRAM_ID, 9)
    assert max_mints_per_transaction(factory) == 20
    assert max_mints_per_transaction(factory, compute_budget=BUDGET) == 19
    assert max_mints_per_transaction(factory, compute_budget=PRICED) == 18
    by_tables = [max_mints_per_versioned_transaction(factory, t) for t in range(1, 9)]
    assert by_tables == [56, 54, 52, 50, 48, 46, 44, 42]
    budgeted = [
        max_mints_per_versioned_transaction(factory, t, compute_budget=BUDGET) for t in range(1, 9)
    ]
    assert budgeted == [54, 52, 50, 48, 46, 44, 42, 40]
    assert max_mints_per_versioned_transaction(factory, 1, compute_budget=PRICED) == 53
    authority = Keypair().pubkey()
    assert max_addresses_per_transaction(authority, create=True, compute_budget=BUDGET) == 28
    assert max_addresses_per_transaction(authority, create=False, compute_budget=BUDGET) == 29
    assert max_addresses_per_transaction(authority, create=False, compute_budget=PRICED) == 29
    assert max_addresses_per_transaction(authority, create=False) == 30


@pytest.mark.parametrize("budget", [None, BUDGET, PRICED])
def test_an_extension_at_capacity_fits_a_real_table_and_one_more_does_not(budget) -> None:
    """Sized on the bytes as sent: a real table address, signed by its authority alone.

    Independent of the builder: an extension is the signature, a 3-byte header, 4
    account keys (authority, table, system, lookup table program) plus the compute
    budget program when budgeted, the blockhash, and the instruction (1 program
    index, 1 + 4 account indexes, 2-byte data length, 4 + 8 bytes of data and 32
    per address); each budget instruction is 1 + 1 + data (5 for the limit, 9 for
    the price).
    """
    authority = Keypair()
    capacity = max_addresses_per_transaction(
        authority.pubkey(), create=False, compute_budget=budget
    )
    keys_ = 4 + (budget is not None)
    budget_ixs = [] if budget is None else [1 + 1 + 1 + 5]
    if budget is not None and budget.micro_lamports_per_unit:
        budget_ixs.append(1 + 1 + 1 + 9)
    fixed = 1 + 64 + 3 + 1 + 32 * keys_ + 32 + 1 + sum(budget_ixs) + 1 + 1 + 4 + 2 + 12
    assert capacity == (PACKET_DATA_SIZE - fixed) // 32  # the most that fits, no fewer

    def signed(count: int):
        extend = extend_table(
            Pubkey.new_unique(), authority.pubkey(), authority.pubkey(), keys(count)
        )
        tx = build_table_transaction([extend], authority.pubkey(), Hash.new_unique(), budget)
        return sign_transaction(tx, [authority])

    assert len(bytes(signed(capacity))) == fixed + 32 * capacity <= PACKET_DATA_SIZE
    with pytest.raises(TransactionTooLarge):
        signed(capacity + 1)


@pytest.mark.parametrize("tables", [1, 3])
def test_capacity_fits_real_tables_and_one_more_does_not(tables: int) -> None:
    authority = Keypair()
    factory = SplMintTo(Pubkey.new_unique(), authority.pubkey(), TOKEN_PROGRAM_ID, 9)
    capacity = max_mints_per_versioned_transaction(factory, tables, compute_budget=BUDGET)
    destinations = keys(capacity + 1)
    lookups = [
        AddressLookupTableAccount(Pubkey.new_unique(), [factory.mint, *destinations[t::tables]])
        for t in range(tables)
    ]

    def build(count: int):
        return build_versioned_mint_transaction(
            factory,
            [(key, U64_MAX) for key in destinations[:count]],
            memo_text=WORST_CASE_MEMO,
            blockhash=Hash.new_unique(),
            tables=lookups,
            compute_budget=BUDGET,
        )

    signed = sign_transaction(build(capacity), [authority])
    assert len(bytes(signed)) <= PACKET_DATA_SIZE and len(signed.signatures) == 1
    assert len(signed.message.address_table_lookups) == tables
    with pytest.raises(TransactionTooLarge):
        build(capacity + 1)


def _tabled_svm(svm: LiteSVM, slot: int) -> None:
    svm.warp_to_slot(slot)
    svm.set_slot_hashes([(s, Hash.new_unique()) for s in range(slot, slot - 10, -1)])


def test_an_extension_is_usable_from_the_next_slot_only() -> None:
    svm = LiteSVM()
    _tabled_svm(svm, 100)
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**10)
    mint = new_mint(svm, payer, payer.pubkey(), TOKEN_PROGRAM_ID)
    owners = keys(2)
    accounts = [associated_token_address(o, mint, TOKEN_PROGRAM_ID) for o in owners]
    for owner in owners:
        ata = create_associated_token_account_idempotent(
            CreateAtaParams(payer.pubkey(), owner, mint, TOKEN_PROGRAM_ID)
        )
        assert isinstance(run(svm, [ata], payer), TransactionMetadata)
    address, instructions = create_table(payer.pubkey(), payer.pubkey(), 99, [mint, accounts[0]])
    tx = build_table_transaction(instructions, payer.pubkey(), svm.latest_blockhash(), BUDGET)
    assert isinstance(svm.send_transaction(sign_transaction(tx, [payer])), TransactionMetadata)
    _tabled_svm(svm, 101)
    extend = extend_table(address, payer.pubkey(), payer.pubkey(), [accounts[1]])
    svm.expire_blockhash()
    tx = build_table_transaction([extend], payer.pubkey(), svm.latest_blockhash(), BUDGET)
    assert isinstance(svm.send_transaction(sign_transaction(tx, [payer])), TransactionMetadata)

    table = LookupTable.from_account_data(address, bytes(svm.get_account(address).data))
    assert table.addresses == (mint, *accounts) and table.authority == payer.pubkey()
    assert (table.last_extended_slot, table.last_extended_slot_start_index) == (101, 2)
    assert table.active_count(101) == 2 and table.active_count(102) == 3
    factory = SplMintTo(mint, payer.pubkey(), TOKEN_PROGRAM_ID, 9)

    def mint_to_new_entry():
        svm.expire_blockhash()
        tx = build_versioned_mint_transaction(
            factory,
            [(accounts[1], 7)],
            memo_text=batch_memo(1),
            blockhash=svm.latest_blockhash(),
            tables=[AddressLookupTableAccount(address, list(table.addresses))],
            compute_budget=BUDGET,
        )
        return svm.send_transaction(sign_transaction(tx, [payer]))

    refused = mint_to_new_entry()  # slot 101: the runtime agrees with active_count
    assert isinstance(refused, FailedTransactionMetadata)
    assert refused.err() == TransactionErrorFieldless.InvalidAddressLookupTableIndex
    _tabled_svm(svm, 102)
    assert isinstance(mint_to_new_entry(), TransactionMetadata)
    assert balance(svm, accounts[1]) == 7


def test_a_full_v0_transaction_executes_within_its_compute_limit() -> None:
    svm = LiteSVM()
    _tabled_svm(svm, 50)
    authority = Keypair()
    svm.airdrop(authority.pubkey(), 10**11)
    mint = new_mint(svm, authority, authority.pubkey(), TOKEN_PROGRAM_ID)
    factory = SplMintTo(mint, authority.pubkey(), TOKEN_PROGRAM_ID, 9)
    capacity = max_mints_per_versioned_transaction(factory, 2, compute_budget=BUDGET)
    owners = keys(capacity)
    accounts = [associated_token_address(o, mint, TOKEN_PROGRAM_ID) for o in owners]
    for start in range(0, capacity, 12):
        creations = [
            create_associated_token_account_idempotent(
                CreateAtaParams(authority.pubkey(), owner, mint, TOKEN_PROGRAM_ID)
            )
            for owner in owners[start : start + 12]
        ]
        svm.expire_blockhash()
        assert isinstance(run(svm, creations, authority), TransactionMetadata)
    tables = []
    for index, chunk in enumerate((accounts[: capacity // 2], accounts[capacity // 2 :])):
        address, instructions = create_table(
            authority.pubkey(), authority.pubkey(), 49 - index, [mint, *chunk]
        )
        svm.expire_blockhash()
        tx = build_table_transaction(instructions, authority.pubkey(), svm.latest_blockhash())
        assert isinstance(
            svm.send_transaction(sign_transaction(tx, [authority])), TransactionMetadata
        )
        tables.append(AddressLookupTableAccount(address, [mint, *chunk]))
    _tabled_svm(svm, 51)
    amounts = [10**9 + 17 * i for i in range(capacity)]
    svm.expire_blockhash()
    tx = build_versioned_mint_transaction(
        factory,
        list(zip(accounts, amounts, strict=True)),
        memo_text=WORST_CASE_MEMO,
        blockhash=svm.latest_blockhash(),
        tables=tables,
        compute_budget=BUDGET,
    )
    result = svm.send_transaction(sign_transaction(tx, [authority]))
    assert isinstance(result, TransactionMetadata), result
    assert [balance(svm, account) for account in accounts] == amounts
