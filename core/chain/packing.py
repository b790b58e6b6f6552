"""Packing many mints (and ATA creations) into as few legacy transactions as fit.

(Versioned transactions through lookup tables: core.chain.versioned.)

Capacities are measured by serializing real transactions, never estimated:
the limit is 1232 bytes per transaction. ATA creations are also capped at 12
per transaction because each one uses 5 of the 64 entries of the runtime's
instruction trace (itself plus 4 inner calls): a 13th fails on chain with
MaxInstructionTraceLengthExceeded although it would still fit in the packet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from solders.hash import Hash
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from core.chain.compute_budget import ComputeBudget
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


def probe_keys(count: int) -> list[Pubkey]:
    # Distinct, deterministic and unlike any real account: the size does not depend on values.
    return [Pubkey.from_bytes(index.to_bytes(4, "big") + b"\xa5" * 28) for index in range(count)]


def mint_instructions(
    factory: MintInstructionFactory,
    mints: Sequence[MintTo],
    *,
    memo_text: str,
    compute_budget: ComputeBudget | None = None,
) -> list[Instruction]:
    """The memo plus one mint per distinct token account (after the budget, when given).

    A destination may appear only once: the planner merges a wallet's readings.
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
    return compute_budget.with_budget(instructions) if compute_budget else instructions


def build_mint_transaction(
    factory: MintInstructionFactory,
    mints: Sequence[MintTo],
    *,
    memo_text: str,
    blockhash: Hash,
    payer: Pubkey | None = None,
    compute_budget: ComputeBudget | None = None,
) -> Transaction:
    """One unsigned legacy transaction: the memo plus one mint per distinct token account.

    The payer defaults to the authority, so one key signs once. With a compute
    budget the transaction asks for the units its instructions cost, at its price.
    """
    instructions = mint_instructions(
        factory, mints, memo_text=memo_text, compute_budget=compute_budget
    )
    return build_transaction(instructions, payer or factory.authority, blockhash)


def largest_fitting(fits: Callable[[int], bool], limit: int = _PROBE_LIMIT) -> int:
    """The largest count in 1..limit for which `fits` holds (fits is monotonic)."""
    low, high = 0, limit  # fits(low) holds; find the largest count that fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    if low == 0:
        raise TransactionTooLarge(PACKET_DATA_SIZE + 1, PACKET_DATA_SIZE)
    return low


@functools.lru_cache(maxsize=64)
def _mint_capacity(
    factory: MintInstructionFactory,
    payer: Pubkey | None,
    memo_text: str,
    compute_budget: ComputeBudget | None,
) -> int:
    def fits(count: int) -> bool:
        mints = [(key, U64_MAX) for key in probe_keys(count)]
        try:
            build_mint_transaction(
                factory,
                mints,
                memo_text=memo_text,
                blockhash=_PROBE_BLOCKHASH,
                payer=payer,
                compute_budget=compute_budget,
            )
        except TransactionTooLarge:
            return False
        return True

    return largest_fitting(fits)


def max_mints_per_transaction(
    factory: MintInstructionFactory,
    *,
    payer: Pubkey | None = None,
    memo_text: str | None = None,
    compute_budget: ComputeBudget | None = None,
) -> int:
    """How many mints to distinct accounts fit in one transaction with the batch memo."""
    memo_text = WORST_CASE_MEMO if memo_text is None else memo_text
    return _mint_capacity(factory, payer, memo_text, compute_budget)


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
    payer: Pubkey,
    owners: Sequence[Pubkey],
    mint: Pubkey,
    token_program: Pubkey,
    blockhash: Hash,
    compute_budget: ComputeBudget | None = None,
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
    if compute_budget is not None:
        instructions = compute_budget.with_budget(instructions)
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
