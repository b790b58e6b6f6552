"""Versioned (v0) mint transactions whose token accounts come from address lookup tables.

A legacy transaction spends 32 bytes on every destination account; through a
lookup table the account costs one index byte, so the limit becomes the
instructions themselves (~17 bytes per MintToChecked) and each table used (34
bytes: its address and two index lists). Capacity is measured by compiling real
messages against probe tables, as core.chain.packing does for legacy ones: the
tables this project creates hold the mint first, so probes do too.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from core.chain.compute_budget import ComputeBudget
from core.chain.errors import TransactionTooLarge
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import U64_MAX
from core.chain.packing import WORST_CASE_MEMO, MintTo, largest_fitting, mint_instructions
from core.chain.transactions import PACKET_DATA_SIZE, serialized_size

MAX_TABLES_PER_TRANSACTION = 8  # beyond this a v0 transaction holds fewer mints than legacy
_PROBE_BLOCKHASH = Hash.default()


def build_versioned_transaction(
    instructions, payer: Pubkey, blockhash: Hash, tables: Sequence[AddressLookupTableAccount]
) -> VersionedTransaction:
    """An unsigned v0 transaction (zeroed signatures), refused when over 1232 bytes.

    Accounts found in `tables` are loaded by index; signers and programs never are.
    """
    message = MessageV0.try_compile(payer, list(instructions), list(tables), blockhash)
    signers = message.header.num_required_signatures
    tx = VersionedTransaction.populate(message, [Signature.default()] * signers)
    size = serialized_size(tx)
    if size > PACKET_DATA_SIZE:
        raise TransactionTooLarge(size, PACKET_DATA_SIZE)
    return tx


def build_versioned_mint_transaction(
    factory: MintInstructionFactory,
    mints: Sequence[MintTo],
    *,
    memo_text: str,
    blockhash: Hash,
    tables: Sequence[AddressLookupTableAccount],
    compute_budget: ComputeBudget | None = None,
    payer: Pubkey | None = None,
) -> VersionedTransaction:
    """The memo and one mint per token account, the accounts loaded from `tables`."""
    instructions = mint_instructions(
        factory, mints, memo_text=memo_text, compute_budget=compute_budget
    )
    return build_versioned_transaction(instructions, payer or factory.authority, blockhash, tables)


def _probe_tables(mint: Pubkey, count: int, tables: int) -> list[AddressLookupTableAccount]:
    """`tables` probe tables (the mint first in each) sharing `count` destinations."""
    accounts = [
        Pubkey.from_bytes(bytes([0xB7]) + index.to_bytes(4, "big") + b"\x5a" * 27)
        for index in range(count)
    ]
    return [
        AddressLookupTableAccount(
            Pubkey.from_bytes(bytes([0xC3, table]) + b"\x3c" * 30),
            [mint, *accounts[table::tables]],
        )
        for table in range(tables)
    ]


@functools.lru_cache(maxsize=256)
def _capacity(
    factory: MintInstructionFactory,
    tables: int,
    payer: Pubkey | None,
    memo_text: str,
    compute_budget: ComputeBudget | None,
) -> int:
    def fits(count: int) -> bool:
        probes = _probe_tables(factory.mint, count, tables)
        destinations = [key for table in probes for key in table.addresses[1:]]
        if count < tables:  # every table must be used by at least one mint
            return True
        try:
            build_versioned_mint_transaction(
                factory,
                [(key, U64_MAX) for key in destinations],
                memo_text=memo_text,
                blockhash=_PROBE_BLOCKHASH,
                tables=probes,
                compute_budget=compute_budget,
                payer=payer,
            )
        except TransactionTooLarge:
            return False
        return True

    return largest_fitting(fits, limit=128)


def max_mints_per_versioned_transaction(
    factory: MintInstructionFactory,
    tables: int,
    *,
    payer: Pubkey | None = None,
    memo_text: str | None = None,
    compute_budget: ComputeBudget | None = None,
) -> int:
    """How many mints fit in one v0 transaction whose accounts come from `tables` tables."""
    if not 1 <= tables <= MAX_TABLES_PER_TRANSACTION:
        raise ValueError(f"between 1 and {MAX_TABLES_PER_TRANSACTION} tables per transaction")
    memo_text = WORST_CASE_MEMO if memo_text is None else memo_text
    return _capacity(factory, tables, payer, memo_text, compute_budget)
