"""Packing with a compute budget, and the capacity search on its own, without a chain.

The budget instructions must come first in every transaction that asks for one,
and the search must find the exact largest count for any threshold.
"""

from __future__ import annotations

import pytest
from solders.compute_budget import ID as COMPUTE_BUDGET_PROGRAM_ID
from solders.hash import Hash
from solders.pubkey import Pubkey

from core.chain.compute_budget import ComputeBudget
from core.chain.errors import TransactionTooLarge
from core.chain.factories import SplMintTo
from core.chain.instructions import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from core.chain.packing import (
    WORST_CASE_MEMO,
    build_ata_transaction,
    build_mint_transaction,
    largest_fitting,
    max_mints_per_transaction,
)
from core.chain.transactions import PACKET_DATA_SIZE

PAYER, MINT = Pubkey.from_bytes(b"\x0f" * 32), Pubkey.from_bytes(b"\x0e" * 32)
BUDGET = ComputeBudget(micro_lamports_per_unit=5)
FACTORY = SplMintTo(MINT, PAYER, TOKEN_PROGRAM_ID, 9)


def keys(count: int) -> list[Pubkey]:
    return [Pubkey.from_bytes(bytes([3, index]) + bytes(30)) for index in range(count)]


def programs(transaction) -> list[Pubkey]:
    message = transaction.message
    return [message.account_keys[ix.program_id_index] for ix in message.instructions]


def test_a_mint_transaction_with_a_budget_starts_with_limit_and_price() -> None:
    mints = [(key, 1_000 + index) for index, key in enumerate(keys(3))]
    plain = build_mint_transaction(FACTORY, mints, memo_text="b:1", blockhash=Hash.default())
    budgeted = build_mint_transaction(
        FACTORY, mints, memo_text="b:1", blockhash=Hash.default(), compute_budget=BUDGET
    )
    assert programs(budgeted)[:2] == [COMPUTE_BUDGET_PROGRAM_ID] * 2
    assert programs(budgeted)[2:] == programs(plain)
    assert COMPUTE_BUDGET_PROGRAM_ID not in programs(plain)
    assert len(programs(plain)) == 4  # the memo and three mints


def test_an_ata_transaction_with_a_budget_starts_with_it() -> None:
    owners = keys(2)
    tx = build_ata_transaction(
        PAYER, owners, MINT, TOKEN_PROGRAM_ID, Hash.default(), compute_budget=BUDGET
    )
    assert programs(tx) == [COMPUTE_BUDGET_PROGRAM_ID] * 2 + [ASSOCIATED_TOKEN_PROGRAM_ID] * 2
    assert tx.message.account_keys[0] == PAYER


def test_a_budget_takes_room_from_the_mint_capacity() -> None:
    plain = max_mints_per_transaction(FACTORY)
    budgeted = max_mints_per_transaction(FACTORY, compute_budget=BUDGET)
    assert budgeted < plain
    mints = [(key, 1) for key in keys(budgeted + 1)]
    with pytest.raises(TransactionTooLarge):
        build_mint_transaction(
            FACTORY,
            mints,
            memo_text=WORST_CASE_MEMO,
            blockhash=Hash.default(),
            compute_budget=BUDGET,
        )


@pytest.mark.parametrize("limit", [1, 2, 7, 64])
def test_the_search_finds_every_threshold_exactly(limit: int) -> None:
    for threshold in range(1, limit + 1):
        assert largest_fitting(lambda count, t=threshold: count <= t, limit) == threshold


def test_nothing_fitting_is_too_large_for_the_packet() -> None:
    with pytest.raises(TransactionTooLarge) as caught:
        largest_fitting(lambda count: False)
    assert (caught.value.size, caught.value.limit) == (1233, 1232)
    assert PACKET_DATA_SIZE == 1232
