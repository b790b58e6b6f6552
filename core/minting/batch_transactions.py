"""What a claimed batch becomes on the wire: a legacy or a v0 transaction, and how many fit.

A batch whose wallets' token accounts sit in lookup tables is compiled as v0
against those tables as the chain holds them; any other batch is legacy. Both
ask for the compute units their instructions cost. The capacities the claim
packs to are measured for the same factory, payer and budget, so what the claim
plans always fits when it is built here.
"""

from __future__ import annotations

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction

from core.chain.compute_budget import ComputeBudget
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import batch_memo
from core.chain.packing import build_mint_transaction, max_mints_per_transaction
from core.chain.versioned import (
    MAX_TABLES_PER_TRANSACTION,
    build_versioned_mint_transaction,
    max_mints_per_versioned_transaction,
)
from core.minting.claim import ClaimedBatch
from core.minting.fill import Capacity
from core.minting.lookup_tables import LookupTables


def mint_capacity(
    factory: MintInstructionFactory, budget: ComputeBudget, *, payer: Pubkey, versioned: bool
) -> Capacity:
    """MintTo per transaction: legacy, and v0 by tables used while that beats legacy."""
    payer_key = None if payer == factory.authority else payer  # one key: one signature
    legacy = max_mints_per_transaction(factory, payer=payer_key, compute_budget=budget)
    if not versioned:
        return Capacity(legacy)
    by_tables = []
    for tables in range(1, MAX_TABLES_PER_TRANSACTION + 1):
        fits = max_mints_per_versioned_transaction(
            factory, tables, payer=payer_key, compute_budget=budget
        )
        if fits <= legacy:
            break
        by_tables.append(fits)
    return Capacity(legacy, tuple(by_tables))


def build_batch_transaction(
    factory: MintInstructionFactory,
    batch: ClaimedBatch,
    destinations: dict[str, Pubkey],
    *,
    blockhash: Hash,
    budget: ComputeBudget,
    payer: Pubkey,
    lookup: LookupTables | None,
) -> Transaction | VersionedTransaction:
    """The unsigned transaction of `batch`: its memo and one mint per wallet; `payer` pays."""
    mints = [(destinations[wallet], amount) for wallet, amount in batch.mints]
    memo = batch_memo(batch.id)
    if batch.tables and lookup is not None:
        tables = lookup.tables_holding(batch.tables, [account for account, _ in mints])
        return build_versioned_mint_transaction(
            factory,
            mints,
            memo_text=memo,
            blockhash=blockhash,
            tables=tables,
            compute_budget=budget,
            payer=payer,
        )
    return build_mint_transaction(
        factory, mints, memo_text=memo, blockhash=blockhash, compute_budget=budget, payer=payer
    )
