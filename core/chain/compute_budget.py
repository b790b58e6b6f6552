"""Compute budget: a unit limit sized to what a transaction's instructions cost, and a price.

Without SetComputeUnitLimit a cluster reserves 200,000 units per instruction, so a
54-mint transaction would ask for the whole 1.4M block share while using ~260k,
and a priority fee (price x limit) would be paid on units never used. The costs
below were measured on the real programs (LiteSVM 0.26's SPL Token, Token-2022,
ATA, Memo, Address Lookup Table and Compute Budget), and
tests/chain/test_compute_budget.py keeps them honest: each estimate covers what
the program consumed, by no more than a small margin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from solders.address_lookup_table_account import ID as LOOKUP_TABLE_PROGRAM_ID
from solders.compute_budget import ID as COMPUTE_BUDGET_PROGRAM_ID
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from core.chain.instructions import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
)

MAX_UNITS = 1_400_000  # a transaction may ask for no more
MARGIN = 1.10  # program upgrades move costs a little; running out fails the transaction

# Measured units per instruction (see the module docstring).
MINT_TO_UNITS = {TOKEN_PROGRAM_ID: 4_500, TOKEN_2022_PROGRAM_ID: 5_100}
CREATE_ATA_UNITS = {TOKEN_PROGRAM_ID: 26_000, TOKEN_2022_PROGRAM_ID: 27_500}  # see below
MEMO_BASE_UNITS, MEMO_UNITS_PER_BYTE = 1_400, 365  # the memo program logs what it checks
COMPUTE_BUDGET_UNITS = 150
LOOKUP_TABLE_UNITS = {0: 1_200, 2: 900}  # create (with its system transfer), extend
SYSTEM_UNITS = 150
# A program that cannot run here (anchor's mint_tokens_direct): generous, not measured.
UNMEASURED_UNITS = 40_000


@dataclass(frozen=True)
class ComputeBudget:
    """What a transaction adds in front of its instructions: the limit, and a price if any."""

    micro_lamports_per_unit: int = 0

    def instructions(self, units: int) -> list[Instruction]:
        limit = [set_compute_unit_limit(units)]
        if self.micro_lamports_per_unit <= 0:
            return limit
        return [*limit, set_compute_unit_price(self.micro_lamports_per_unit)]

    def priority_fee(self, units: int) -> int:
        """Lamports a cluster adds to the signature fees: ceil(limit x price / 10^6)."""
        return math.ceil(units * self.micro_lamports_per_unit / 1_000_000)

    def with_budget(self, instructions: Sequence[Instruction]) -> list[Instruction]:
        """The instructions preceded by a limit sized to them (and the price, when set)."""
        return [*self.instructions(unit_limit(instructions)), *instructions]


def instruction_units(instruction: Instruction) -> int:
    """The measured cost of one instruction; UNMEASURED_UNITS for programs not listed."""
    program = instruction.program_id
    data = bytes(instruction.data)
    if program in MINT_TO_UNITS:
        return MINT_TO_UNITS[program]
    if program == ASSOCIATED_TOKEN_PROGRAM_ID:
        token_program = instruction.accounts[5].pubkey if len(instruction.accounts) > 5 else None
        return CREATE_ATA_UNITS.get(token_program or Pubkey.default(), UNMEASURED_UNITS)
    if program == MEMO_PROGRAM_ID:
        return MEMO_BASE_UNITS + MEMO_UNITS_PER_BYTE * len(data)
    if program == COMPUTE_BUDGET_PROGRAM_ID:
        return COMPUTE_BUDGET_UNITS
    if program == LOOKUP_TABLE_PROGRAM_ID:
        return LOOKUP_TABLE_UNITS.get(int.from_bytes(data[:4], "little"), UNMEASURED_UNITS)
    if program == SYSTEM_PROGRAM_ID:
        return SYSTEM_UNITS
    return UNMEASURED_UNITS


def unit_limit(instructions: Sequence[Instruction]) -> int:
    """The limit for these instructions plus the budget instructions themselves, with margin."""
    units = sum(instruction_units(instruction) for instruction in instructions)
    units += 2 * COMPUTE_BUDGET_UNITS  # the limit and the price instructions
    return min(MAX_UNITS, math.ceil(units * MARGIN))
