"""MINT_MODE=anchor: GridTokenX energy_token `mint_tokens_direct(amount: u64)` via anchorpy.

The instruction data comes from anchorpy's coder over the program's IDL
(GRIDTOKENX_IDL_PATH): an 8-byte discriminator sha256("global:mint_tokens_direct")[:8]
then the amount as u64 little-endian. The accounts follow the IDL's order and
flags: token_info (PDA of ["token_info"], writable), mint (writable), the
user's token account (writable), authority (signer), token program.

No Provider or connection is built: instructions are pure data, and sending
goes through core.chain.client like every other transaction. The program is
not deployable on the embedded localnet, so this mode is verified by its
instruction bytes and account metas, not by execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchorpy import Coder, Idl, NamedInstruction
from anchorpy_core.idl import IdlAccount, IdlInstruction, IdlTypeSimple
from pyheck import snake
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from core.chain.client import ChainClient
from core.chain.errors import IdlMismatch, MintMismatch
from core.chain.instructions import U64_MAX, token_program_id
from core.config import AppSettings

INSTRUCTION = "mint_tokens_direct"
TOKEN_INFO_SEED = b"token_info"
EXPECTED_ACCOUNTS = ("token_info", "mint", "user_token_account", "authority", "token_program")


def token_info_address(program_id: Pubkey) -> Pubkey:
    """The program's TokenInfo PDA, which is also the GRX mint's mint authority."""
    return Pubkey.find_program_address([TOKEN_INFO_SEED], program_id)[0]


def load_idl(path: Path) -> Idl:
    """Parse the IDL and check that it has `mint_tokens_direct` as this module calls it."""
    try:
        idl = Idl.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdlMismatch(f"GRIDTOKENX_IDL_PATH={path} cannot be read: {exc.strerror}") from exc
    except Exception as exc:  # anchorpy_core raises its own parse errors
        raise IdlMismatch(
            f"GRIDTOKENX_IDL_PATH={path} is not an Anchor IDL anchorpy 0.21 can read "
            f"(legacy pre-0.30 layout): {exc}"
        ) from exc
    _instruction_of(idl, path)
    return idl


def _instruction_of(idl: Idl, path: Path | str) -> IdlInstruction:
    found = [ix for ix in idl.instructions if snake(ix.name) == INSTRUCTION]
    if not found:
        raise IdlMismatch(f"the IDL {path} has no instruction {INSTRUCTION}")
    ix = found[0]
    names = tuple(snake(account.name) for account in ix.accounts)
    if names != EXPECTED_ACCOUNTS or not all(isinstance(a, IdlAccount) for a in ix.accounts):
        raise IdlMismatch(f"{INSTRUCTION} in {path} takes {names}, not {EXPECTED_ACCOUNTS}")
    args = [(snake(arg.name), arg.ty) for arg in ix.args]
    if args != [("amount", IdlTypeSimple.U64)]:
        raise IdlMismatch(f"{INSTRUCTION} in {path} must take exactly (amount: u64)")
    return ix


@dataclass(frozen=True)
class AnchorMintTokensDirect:
    """A MintInstructionFactory for MINT_MODE=anchor (see core.chain.factories)."""

    program_id: Pubkey
    mint: Pubkey
    authority: Pubkey
    token_program: Pubkey
    idl: Idl = field(compare=False, repr=False)
    _coder: Coder = field(init=False, compare=False, repr=False)
    _ix: IdlInstruction = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_coder", Coder(self.idl))
        object.__setattr__(self, "_ix", _instruction_of(self.idl, self.idl.name))

    @classmethod
    def from_idl(
        cls,
        path: Path,
        program_id: Pubkey,
        *,
        mint: Pubkey,
        authority: Pubkey,
        token_program: Pubkey,
    ) -> AnchorMintTokensDirect:
        return cls(program_id, mint, authority, token_program, load_idl(path))

    @property
    def token_info(self) -> Pubkey:
        return token_info_address(self.program_id)

    def __call__(self, destination: Pubkey, amount: int) -> Instruction:
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= U64_MAX:
            raise ValueError(f"amount must be an integer within 0..2^64-1, not {amount!r}")
        keys = {
            "token_info": self.token_info,
            "mint": self.mint,
            "user_token_account": destination,
            "authority": self.authority,
            "token_program": self.token_program,
        }
        metas = [
            AccountMeta(keys[snake(account.name)], account.is_signer, account.is_mut)
            for account in self._ix.accounts
        ]
        data = self._coder.instruction.build(
            NamedInstruction(name=INSTRUCTION, data={"amount": amount})
        )
        return Instruction(self.program_id, data, metas)

    def decode(self, instruction: Instruction) -> tuple[int, dict[str, Pubkey]]:
        """(amount, accounts by IDL name) of a mint_tokens_direct instruction."""
        if instruction.program_id != self.program_id:
            raise ValueError(f"not an instruction of {self.program_id}")
        parsed = self._coder.instruction.parse(bytes(instruction.data))
        if parsed.name != INSTRUCTION:
            raise ValueError(f"not {INSTRUCTION}: {parsed.name}")
        names = [snake(account.name) for account in self._ix.accounts]
        accounts = {
            name: meta.pubkey for name, meta in zip(names, instruction.accounts, strict=True)
        }
        return int(parsed.data["amount"]), accounts

    def decode_token_info(self, data: bytes) -> dict[str, Any]:
        """The TokenInfo account's fields (authority, mint, total_supply, ...)."""
        try:
            decoded = self._coder.accounts.decode(data)
        except Exception as exc:  # construct raises many kinds for foreign bytes
            raise ValueError("not a TokenInfo account of this IDL") from exc
        # anchorpy decodes to a dataclass generated from the IDL.
        return {snake(key): value for key, value in vars(decoded).items()}


def verify_anchor_setup(client: ChainClient, authority: Pubkey, app: AppSettings) -> Pubkey:
    """Check on chain that the program can mint ENERGY_TOKEN_MINT for `authority`.

    Returns the mint authority the mint must have: the program's TokenInfo PDA.
    """
    program_id = Pubkey.from_string(app.gridtokenx_program_id)
    mint = Pubkey.from_string(app.energy_token_mint)
    factory = AnchorMintTokensDirect.from_idl(
        Path(app.gridtokenx_idl_path or ""),
        program_id,
        mint=mint,
        authority=authority,
        token_program=token_program_id(app.token_program),
    )
    token_info = client.account(factory.token_info)
    if token_info is None or token_info.owner != program_id:
        raise MintMismatch(
            f"the energy_token TokenInfo account {factory.token_info} does not exist under "
            f"GRIDTOKENX_PROGRAM_ID={program_id} on {client.url}; deploy and initialize the "
            "program there, or use MINT_MODE=spl"
        )
    try:
        fields = factory.decode_token_info(token_info.data)
    except ValueError as exc:
        raise MintMismatch(
            f"{factory.token_info} is not a TokenInfo account as GRIDTOKENX_IDL_PATH describes it"
        ) from exc
    if fields.get("authority") != authority:
        raise MintMismatch(
            f"TokenInfo {factory.token_info} names authority {fields.get('authority')}, not "
            f"{authority}; point AUTHORITY_KEYPAIR_PATH at the program authority's keypair"
        )
    if fields.get("mint") != mint:
        raise MintMismatch(
            f"TokenInfo {factory.token_info} names mint {fields.get('mint')}, not "
            f"ENERGY_TOKEN_MINT={mint}; set ENERGY_TOKEN_MINT={fields.get('mint')}"
        )
    mint_authority = client.mint_info(mint).mint_authority
    if mint_authority != factory.token_info:
        raise MintMismatch(
            f"the mint {mint} has mint authority {mint_authority}, not the program's "
            f"TokenInfo PDA {factory.token_info}; MINT_MODE=anchor cannot mint with it"
        )
    return factory.token_info
