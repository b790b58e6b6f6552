"""Address lookup tables: create and extend them, read them, and know which entries work.

A table is created at an address derived from its authority and a recent slot,
and grows by extension (at most 256 addresses). Entries are append-only: once an
address is at position i it stays there, so a transaction compiled against a
table read from the chain can never point at another account. An extension made
in slot S can be used only from slot S + 1 on (the warm-up rule below), which
LiteSVM enforces like a validator (InvalidAddressLookupTableIndex).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from solders.address_lookup_table_account import (
    LOOKUP_TABLE_MAX_ADDRESSES,
    AddressLookupTable,
    AddressLookupTableAccount,
)
from solders.hash import Hash
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import (
    CreateLookupTableParams,
    ExtendLookupTableParams,
    create_lookup_table,
    extend_lookup_table,
)
from solders.transaction import Transaction

from core.chain.compute_budget import ComputeBudget
from core.chain.errors import TransactionTooLarge
from core.chain.packing import largest_fitting, probe_keys
from core.chain.transactions import build_transaction

MAX_ADDRESSES = LOOKUP_TABLE_MAX_ADDRESSES  # 256 per table
_NOT_DEACTIVATED = 2**64 - 1
_PROBE_BLOCKHASH = Hash.default()
# A table address like any real one. Pubkey.default() would not do: it is the System
# Program's id, which every extension already names, so a probe at that address
# is one account key (32 bytes) shorter than the real transaction.
_PROBE_TABLE = Pubkey.from_bytes(bytes([0xC3]) + b"\x3c" * 31)


@dataclass(frozen=True)
class LookupTable:
    """A table as the chain holds it."""

    address: Pubkey
    authority: Pubkey | None
    addresses: tuple[Pubkey, ...]
    last_extended_slot: int
    last_extended_slot_start_index: int
    deactivated: bool

    @classmethod
    def from_account_data(cls, address: Pubkey, data: bytes) -> LookupTable:
        table = AddressLookupTable.deserialize(data)
        meta = table.meta
        return cls(
            address=address,
            authority=meta.authority,
            addresses=tuple(table.addresses),
            last_extended_slot=meta.last_extended_slot,
            last_extended_slot_start_index=meta.last_extended_slot_start_index,
            deactivated=meta.deactivation_slot != _NOT_DEACTIVATED,
        )

    def active_count(self, current_slot: int) -> int:
        """How many leading entries a transaction executing at `current_slot` may use.

        Agave's rule: the addresses added by the last extension (from its start
        index on) are usable only once the slot is past the one that added them.
        """
        if self.deactivated:
            return 0
        if current_slot > self.last_extended_slot:
            return len(self.addresses)
        return self.last_extended_slot_start_index

    def usable(self, current_slot: int) -> AddressLookupTableAccount:
        """The table as a transaction may use it now: only its active entries."""
        active = self.addresses[: self.active_count(current_slot)]
        return AddressLookupTableAccount(self.address, list(active))


def create_table(
    authority: Pubkey, payer: Pubkey, recent_slot: int, addresses: Sequence[Pubkey]
) -> tuple[Pubkey, list[Instruction]]:
    """The new table's address and the instructions creating it holding `addresses`.

    `recent_slot` must still be in the cluster's SlotHashes (the last 512 slots)
    when the transaction executes; the address depends on it.
    """
    create, table = create_lookup_table(
        CreateLookupTableParams(
            authority_address=authority, payer_address=payer, recent_slot=recent_slot
        )
    )
    return table, [create, extend_table(table, authority, payer, addresses)]


def extend_table(
    table: Pubkey, authority: Pubkey, payer: Pubkey, addresses: Sequence[Pubkey]
) -> Instruction:
    """Append `addresses`; the payer tops the table's rent up for the added bytes."""
    if not addresses:
        raise ValueError("an extension needs at least one address")
    return extend_lookup_table(
        ExtendLookupTableParams(
            payer_address=payer,
            lookup_table_address=table,
            authority_address=authority,
            new_addresses=list(addresses),
        )
    )


def build_table_transaction(
    instructions: Sequence[Instruction],
    payer: Pubkey,
    blockhash: Hash,
    compute_budget: ComputeBudget | None = None,
) -> Transaction:
    """An unsigned legacy transaction carrying a table's create and/or extend instructions."""
    budgeted = compute_budget.with_budget(instructions) if compute_budget else list(instructions)
    return build_transaction(budgeted, payer, blockhash)


@functools.lru_cache(maxsize=16)
def max_addresses_per_transaction(
    authority: Pubkey, *, create: bool, compute_budget: ComputeBudget | None = None
) -> int:
    """How many addresses one extension (after a creation, when `create`) carries, measured.

    Measured on the transaction as it is sent: the table authority pays and signs
    alone (one signature), with the compute budget given.
    """

    def fits(count: int) -> bool:
        addresses = probe_keys(count)
        if create:
            _, instructions = create_table(authority, authority, 2**63, addresses)
        else:
            instructions = [extend_table(_PROBE_TABLE, authority, authority, addresses)]
        try:
            build_table_transaction(instructions, authority, _PROBE_BLOCKHASH, compute_budget)
        except TransactionTooLarge:
            return False
        return True

    return largest_fitting(fits)
