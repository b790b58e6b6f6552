"""One interface for "mint `amount` to `destination`", whatever MINT_MODE says.

The packer only sees a `MintInstructionFactory`, so spl and anchor modes pack,
measure and sign the same way. Factories are frozen dataclasses: hashable, so
the measured per-transaction capacity can be cached per factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from core.chain.instructions import MintToParams, mint_to, token_program_id
from core.config import AppSettings, MintMode


class MintInstructionFactory(Protocol):
    """Builds one mint instruction; `authority` must sign the transaction carrying it."""

    @property
    def authority(self) -> Pubkey: ...

    @property
    def mint(self) -> Pubkey: ...

    @property
    def token_program(self) -> Pubkey: ...

    def __call__(self, destination: Pubkey, amount: int) -> Instruction: ...


@dataclass(frozen=True)
class SplMintTo:
    """MINT_MODE=spl: the SPL Token program's MintTo, signed by the mint authority.

    With `decimals` set it is MintToChecked, so a TOKENIZATION_DECIMALS that
    disagrees with the mint fails on chain instead of minting 10^k times too much.
    """

    mint: Pubkey
    authority: Pubkey
    token_program: Pubkey
    decimals: int | None = None

    def __call__(self, destination: Pubkey, amount: int) -> Instruction:
        return mint_to(
            MintToParams(
                self.token_program, self.mint, destination, self.authority, amount, self.decimals
            )
        )


def mint_instruction_factory(
    app: AppSettings, *, mint: Pubkey, authority: Pubkey, decimals: int
) -> MintInstructionFactory:
    """The factory MINT_MODE selects, for this mint and authority."""
    program = token_program_id(app.token_program)
    if app.mint_mode is MintMode.SPL:
        return SplMintTo(mint, authority, program, decimals)
    from core.chain.anchor import AnchorMintTokensDirect  # anchorpy is slow to import

    return AnchorMintTokensDirect.from_idl(
        Path(app.gridtokenx_idl_path or ""),
        Pubkey.from_string(app.gridtokenx_program_id),
        mint=mint,
        authority=authority,
        token_program=program,
    )
