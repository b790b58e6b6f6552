"""Packing many mints (and ATA creations) into as few legacy transactions as fit.

Capacities are measured by serializing real transactions, never estimated:
the limit is 1232 bytes per transaction. ATA creations are also capped at 12
per transaction because each one uses 5 of the 64 entries of the runtime's
instruction trace (itself plus 4 inner calls): a 13th fails on chain with
MaxInstructionTraceLengthExceeded although it would still fit in the packet.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from core.chain.errors import TransactionTooLarge
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import (
    U64_MAX,
    CreateAtaParams,
    batch_memo,
    create_associated_token_account_idempotent,
    memo,
)
from core.chain.transactions import PACKET_DATA_SIZE, build_transaction

MintTo = tuple[Pubkey, int]  # (token account, base units)

MAX_ATA_CREATIONS_PER_TX = 12
# Capacity is computed for the longest batch id a memo may carry (19 digits fit a BIGINT).
WORST_CASE_MEMO = batch_memo(10**19 - 1)
_PROBE_LIMIT = 64  # more than any legacy transaction can hold
_PROBE_BLOCKHASH = Hash.default()


def _probe_keys(count: int) -> list[Pubkey]:
    # Distinct, deterministic and unlike any real account: the size does not depend on values.
    return [Pubkey.from_bytes(index.to_bytes(4, "big") + b"\xa5" * 28) for index in range(count)]


def build_mint_transaction(
    factory: MintInstructionFactory,
    mints: Sequence[MintTo],
    *,
    memo_text: str,
    blockhash: Hash,
    payer: Pubkey | None = None,
) -> Transaction:
    """One unsigned transaction: the memo plus one mint per distinct token account.

    The payer defaults to the authority, so one key signs once. A destination
    may appear only once: the planner merges a wallet's readings into one amount.
    """
    if not mints:
        raise ValueError("a mint transaction needs at least one mint")
    destinations = [destination for destination, _ in mints]
    if len(set(destinations)) != len(destinations):
        raise ValueError("each token account may appear once per transaction; merge amounts")
    for destination, amount in mints:
        if amount <= 0:
            raise ValueError(f"amount for {destination} must be positive, not {amount}")
    instructions = [memo(memo_text)] + [factory(dest, amount) for dest, amount in mints]
    return build_transaction(instructions, payer or factory.authority, blockhash)


@functools.lru_cache(maxsize=64)
def _mint_capacity(factory: MintInstructionFactory, payer: Pubkey | None, memo_text: str) -> int:
    def fits(count: int) -> bool:
        mints = [(key, U64_MAX) for key in _probe_keys(count)]
        try:
            build_mint_transaction(
                factory, mints, memo_text=memo_text, blockhash=_PROBE_BLOCKHASH, payer=payer
            )
        except TransactionTooLarge:
            return False
        return True

    low, high = 0, _PROBE_LIMIT  # fits(low) holds; find the largest count that fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    if low == 0:
        raise TransactionTooLarge(PACKET_DATA_SIZE + 1, PACKET_DATA_SIZE)
    return low


def max_mints_per_transaction(
    factory: MintInstructionFactory, *, payer: Pubkey | None = None, memo_text: str | None = None
) -> int:
    """How many mints to distinct accounts fit in one transaction with the batch memo."""
    return _mint_capacity(factory, payer, WORST_CASE_MEMO if memo_text is None else memo_text)


def chunk_mints(mints: Sequence[MintTo], per_transaction: int) -> list[list[MintTo]]:
    """Split (account, amount) pairs into transaction-sized groups, keeping their order."""
    if per_transaction < 1:
        raise ValueError("per_transaction must be at least 1")
    destinations = [destination for destination, _ in mints]
    if len(set(destinations)) != len(destinations):
        raise ValueError("each token account may appear once; merge amounts before packing")
    return [
        list(mints[start : start + per_transaction])
        for start in range(0, len(mints), per_transaction)
    ]


def build_ata_transaction(
    payer: Pubkey, owners: Sequence[Pubkey], mint: Pubkey, token_program: Pubkey, blockhash: Hash
) -> Transaction:
    """One unsigned transaction creating the owners' ATAs (idempotent, safe to resend)."""
    if not owners or len(owners) > MAX_ATA_CREATIONS_PER_TX:
        raise ValueError(f"between 1 and {MAX_ATA_CREATIONS_PER_TX} owners per transaction")
    if len(set(owners)) != len(owners):
        raise ValueError("owners must be distinct")
    instructions = [
        create_associated_token_account_idempotent(
            CreateAtaParams(payer, owner, mint, token_program)
        )
        for owner in owners
    ]
    return build_transaction(instructions, payer, blockhash)


def pack_ata_creations(
    payer: Pubkey, owners: Sequence[Pubkey], mint: Pubkey, token_program: Pubkey, blockhash: Hash
) -> list[Transaction]:
    """Unsigned transactions creating every owner's ATA, at most 12 per transaction."""
    unique = list(dict.fromkeys(owners))
    return [
        build_ata_transaction(
            payer, unique[start : start + MAX_ATA_CREATIONS_PER_TX], mint, token_program, blockhash
        )
        for start in range(0, len(unique), MAX_ATA_CREATIONS_PER_TX)
    ]
