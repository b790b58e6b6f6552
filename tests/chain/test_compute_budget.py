"""The compute-unit limits cover what the real programs consume, by a small margin only.

Each transaction the scheduler sends is simulated on LiteSVM's real programs:
the limit our estimates ask for must be at least what the programs used (or the
transaction would fail on a cluster, fee paid) and not far above it (a priority
fee is paid on the limit, not on what is used).
"""

from __future__ import annotations

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.transaction_metadata import TransactionMetadata

from core.chain.compute_budget import ComputeBudget, unit_limit
from core.chain.factories import SplMintTo
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    associated_token_address,
    batch_memo,
)
from core.chain.lookup_tables import create_table, extend_table
from core.chain.packing import WORST_CASE_MEMO, build_ata_transaction, build_mint_transaction
from core.chain.transactions import build_transaction, sign_transaction
from tests.chain.test_builders import new_mint

PROGRAMS = pytest.mark.parametrize(
    "program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)


def consumed_and_asked(svm: LiteSVM, tx, signers) -> tuple[int, int]:
    """(units the programs used, the limit the transaction asked for)."""
    signed = sign_transaction(tx, signers)
    result = svm.send_transaction(signed)
    assert isinstance(result, TransactionMetadata), result
    limit_data = bytes(signed.message.instructions[0].data)
    assert limit_data[0] == 2  # SetComputeUnitLimit comes first
    return result.compute_units_consumed(), int.from_bytes(limit_data[1:5], "little")


@PROGRAMS
def test_mint_and_account_limits_cover_consumption(program) -> None:
    svm = LiteSVM()
    authority = Keypair()
    svm.airdrop(authority.pubkey(), 10**11)
    mint = new_mint(svm, authority, authority.pubkey(), program)
    owners = [Keypair().pubkey() for _ in range(12)]
    budget = ComputeBudget()
    create = build_ata_transaction(
        authority.pubkey(), owners, mint, program, svm.latest_blockhash(), budget
    )
    used, asked = consumed_and_asked(svm, create, [authority])
    assert used <= asked <= used * 1.45  # an ATA's cost varies with its address's bump
    factory = SplMintTo(mint, authority.pubkey(), program, 9)
    accounts = [associated_token_address(owner, mint, program) for owner in owners]
    for count, memo in ((1, batch_memo(7)), (12, WORST_CASE_MEMO)):
        svm.expire_blockhash()
        tx = build_mint_transaction(
            factory,
            [(account, 10**9) for account in accounts[:count]],
            memo_text=memo,
            blockhash=svm.latest_blockhash(),
            compute_budget=budget,
        )
        used, asked = consumed_and_asked(svm, tx, [authority])
        assert used <= asked <= used * 1.15, (count, used, asked)


def test_lookup_table_limits_cover_consumption() -> None:
    svm = LiteSVM()
    svm.warp_to_slot(20)
    svm.set_slot_hashes([(s, Hash.new_unique()) for s in range(20, 10, -1)])
    authority = Keypair()
    svm.airdrop(authority.pubkey(), 10**10)
    addresses = [Keypair().pubkey() for _ in range(28)]
    table, instructions = create_table(authority.pubkey(), authority.pubkey(), 19, addresses)
    budgeted = ComputeBudget().with_budget(instructions)
    tx = build_transaction(budgeted, authority.pubkey(), svm.latest_blockhash())
    used, asked = consumed_and_asked(svm, tx, [authority])
    assert used <= asked <= used * 1.25
    svm.warp_to_slot(21)
    svm.expire_blockhash()
    extend = extend_table(table, authority.pubkey(), authority.pubkey(), addresses[:3])
    budgeted = ComputeBudget().with_budget([extend])
    tx = build_transaction(budgeted, authority.pubkey(), svm.latest_blockhash())
    used, asked = consumed_and_asked(svm, tx, [authority])
    assert used <= asked <= used * 1.4


def test_the_limit_and_price_instructions_and_the_priority_fee() -> None:
    budget = ComputeBudget(micro_lamports_per_unit=2_500)
    instructions = budget.instructions(30_001)
    assert [bytes(i.data) for i in instructions] == [
        bytes([2]) + (30_001).to_bytes(4, "little"),
        bytes([3]) + (2_500).to_bytes(8, "little"),
    ]
    assert budget.priority_fee(30_001) == 76  # 75,002,500 micro-lamports, rounded up
    assert ComputeBudget().instructions(5)[0].data == bytes([2, 5, 0, 0, 0])
    assert len(ComputeBudget().instructions(5)) == 1  # no price, no price instruction
    assert unit_limit([]) == 330  # the two budget instructions (150 each), plus 10%
