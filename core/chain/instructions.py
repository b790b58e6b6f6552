"""Pure instruction builders, each with a matching decoder (the solana-py spl layout).

Built by hand rather than with `spl.token.instructions` because solana-py's
`Token.mint_to` cannot sign with an authority separate from the payer, and
because these few byte layouts are easier to audit than a dependency's. Every
builder is tested by round trip through its decoder and by running it on
LiteSVM's real SPL Token, Token-2022, ATA and Memo programs.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountParams, create_account
from solders.token.associated import get_associated_token_address

from core.config import TokenProgram

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")  # v2

TOKEN_PROGRAM_IDS: dict[TokenProgram, Pubkey] = {
    TokenProgram.SPL_TOKEN: TOKEN_PROGRAM_ID,
    TokenProgram.TOKEN_2022: TOKEN_2022_PROGRAM_ID,
}

MINT_SIZE = 82  # a base mint; Token-2022 accepts it when no extension is used
U64_MAX = 2**64 - 1

_MINT_TO = 7
_MINT_TO_CHECKED = 14
_INITIALIZE_MINT2 = 20
_ATA_CREATE_IDEMPOTENT = 1
BATCH_MEMO_PREFIX = "gridtokenx:batch:"


def token_program_id(program: TokenProgram | str) -> Pubkey:
    """The on-chain id of TOKEN_PROGRAM ("spl-token" or "token-2022")."""
    return TOKEN_PROGRAM_IDS[TokenProgram(program)]


def token_program_name(program_id: Pubkey) -> TokenProgram | None:
    """The TOKEN_PROGRAM value for an owner program id; None when it is not a token program."""
    for name, pid in TOKEN_PROGRAM_IDS.items():
        if pid == program_id:
            return name
    return None


def associated_token_address(owner: Pubkey, mint: Pubkey, token_program: Pubkey) -> Pubkey:
    """The owner's ATA; the address depends on the token program, not only owner and mint."""
    return get_associated_token_address(owner, mint, token_program)


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= U64_MAX:
        raise ValueError(f"amount must be an integer within 0..2^64-1, not {amount!r}")


def _expect(instruction: Instruction, program_ids: tuple[Pubkey, ...], tag: int, size: int) -> None:
    if instruction.program_id not in program_ids:
        raise ValueError(f"not an instruction of {program_ids}: {instruction.program_id}")
    data = bytes(instruction.data)
    if len(data) != size or data[0] != tag:
        raise ValueError(f"not instruction {tag} ({size} bytes) of {instruction.program_id}")


# --- MintTo / MintToChecked ------------------------------------------------------------


class MintToParams(NamedTuple):
    token_program: Pubkey
    mint: Pubkey
    destination: Pubkey
    authority: Pubkey
    amount: int
    decimals: int | None = None  # set: MintToChecked, which the program checks against the mint


def mint_to(params: MintToParams) -> Instruction:
    """MintTo (or MintToChecked when `decimals` is set) signed by a separate mint authority."""
    _check_amount(params.amount)
    if params.decimals is None:
        data = struct.pack("<BQ", _MINT_TO, params.amount)
    else:
        data = struct.pack("<BQB", _MINT_TO_CHECKED, params.amount, params.decimals)
    accounts = [
        AccountMeta(params.mint, is_signer=False, is_writable=True),
        AccountMeta(params.destination, is_signer=False, is_writable=True),
        AccountMeta(params.authority, is_signer=True, is_writable=False),
    ]
    return Instruction(params.token_program, data, accounts)


def decode_mint_to(instruction: Instruction) -> MintToParams:
    data = bytes(instruction.data)
    checked = bool(data) and data[0] == _MINT_TO_CHECKED
    _expect(
        instruction,
        tuple(TOKEN_PROGRAM_IDS.values()),
        _MINT_TO_CHECKED if checked else _MINT_TO,
        10 if checked else 9,
    )
    mint, destination, authority = (meta.pubkey for meta in instruction.accounts[:3])
    amount = struct.unpack_from("<Q", data, 1)[0]
    decimals = data[9] if checked else None
    return MintToParams(instruction.program_id, mint, destination, authority, amount, decimals)


# --- Associated token account (create idempotent) --------------------------------------


class CreateAtaParams(NamedTuple):
    payer: Pubkey
    owner: Pubkey
    mint: Pubkey
    token_program: Pubkey

    @property
    def address(self) -> Pubkey:
        return associated_token_address(self.owner, self.mint, self.token_program)


def create_associated_token_account_idempotent(params: CreateAtaParams) -> Instruction:
    """Create the owner's ATA, succeeding when it exists already (safe to resend)."""
    accounts = [
        AccountMeta(params.payer, is_signer=True, is_writable=True),
        AccountMeta(params.address, is_signer=False, is_writable=True),
        AccountMeta(params.owner, is_signer=False, is_writable=False),
        AccountMeta(params.mint, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(params.token_program, is_signer=False, is_writable=False),
    ]
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([_ATA_CREATE_IDEMPOTENT]), accounts)


def decode_create_associated_token_account_idempotent(instruction: Instruction) -> CreateAtaParams:
    _expect(instruction, (ASSOCIATED_TOKEN_PROGRAM_ID,), _ATA_CREATE_IDEMPOTENT, 1)
    keys = [meta.pubkey for meta in instruction.accounts]
    params = CreateAtaParams(payer=keys[0], owner=keys[2], mint=keys[3], token_program=keys[5])
    if params.address != keys[1]:
        raise ValueError("the account is not the owner's associated token account")
    return params


# --- Memo -----------------------------------------------------------------------------


def memo(text: str) -> Instruction:
    """A Memo v2 instruction with no signer accounts: the transaction's signers vouch for it."""
    return Instruction(MEMO_PROGRAM_ID, text.encode("utf-8"), [])


def decode_memo(instruction: Instruction) -> str:
    if instruction.program_id != MEMO_PROGRAM_ID:
        raise ValueError(f"not a memo instruction: {instruction.program_id}")
    return bytes(instruction.data).decode("utf-8")


def batch_memo(batch_id: int) -> str:
    """The memo every mint transaction carries (CONTRACT): `gridtokenx:batch:{id}`."""
    if isinstance(batch_id, bool) or not isinstance(batch_id, int) or batch_id < 0:
        raise ValueError(f"batch id must be a non-negative integer, not {batch_id!r}")
    return f"{BATCH_MEMO_PREFIX}{batch_id}"


def parse_batch_memo(text: str) -> int | None:
    """The batch id in a memo written by `batch_memo`, else None."""
    digits = text.removeprefix(BATCH_MEMO_PREFIX)
    if digits == text or not digits.isdigit():
        return None
    return int(digits)


# --- Mint creation --------------------------------------------------------------------


class CreateMintParams(NamedTuple):
    payer: Pubkey
    mint: Pubkey
    mint_authority: Pubkey
    decimals: int
    lamports: int  # rent exemption for MINT_SIZE bytes, from the cluster
    token_program: Pubkey
    freeze_authority: Pubkey | None = None


def initialize_mint2(params: CreateMintParams) -> Instruction:
    """InitializeMint2: like InitializeMint but without the rent sysvar account."""
    if not 0 <= params.decimals <= 255:
        raise ValueError("decimals must fit in a u8")
    freeze_authority = params.freeze_authority
    freeze = b"\x00" if freeze_authority is None else b"\x01" + bytes(freeze_authority)
    data = bytes([_INITIALIZE_MINT2, params.decimals]) + bytes(params.mint_authority) + freeze
    return Instruction(
        params.token_program, data, [AccountMeta(params.mint, is_signer=False, is_writable=True)]
    )


def decode_initialize_mint2(instruction: Instruction) -> tuple[Pubkey, int, Pubkey, Pubkey | None]:
    """(mint, decimals, mint_authority, freeze_authority) of an InitializeMint2."""
    data = bytes(instruction.data)
    _expect(instruction, tuple(TOKEN_PROGRAM_IDS.values()), _INITIALIZE_MINT2, len(data))
    if len(data) not in (35, 67):
        raise ValueError("malformed InitializeMint2 data")
    freeze = Pubkey.from_bytes(data[35:67]) if data[34] == 1 else None
    return instruction.accounts[0].pubkey, data[1], Pubkey.from_bytes(data[2:34]), freeze


def create_mint(params: CreateMintParams) -> list[Instruction]:
    """Allocate the mint account (owned by the token program) and initialize it."""
    allocate = create_account(
        CreateAccountParams(
            from_pubkey=params.payer,
            to_pubkey=params.mint,
            lamports=params.lamports,
            space=MINT_SIZE,
            owner=params.token_program,
        )
    )
    return [allocate, initialize_mint2(params)]


# --- SetAuthority ----------------------------------------------------------------------

_SET_AUTHORITY = 6
AUTHORITY_TYPE_MINT_TOKENS = 0


class SetAuthorityParams(NamedTuple):
    token_program: Pubkey
    mint: Pubkey
    current_authority: Pubkey
    new_authority: Pubkey | None  # None removes the authority for good (fixed supply)
    authority_type: int = AUTHORITY_TYPE_MINT_TOKENS


def set_authority(params: SetAuthorityParams) -> Instruction:
    """SetAuthority on a mint, signed by its current authority (same layout in Token-2022)."""
    new = params.new_authority
    data = bytes([_SET_AUTHORITY, params.authority_type]) + (
        b"\x00" if new is None else b"\x01" + bytes(new)
    )
    return Instruction(
        params.token_program,
        data,
        [
            AccountMeta(params.mint, is_signer=False, is_writable=True),
            AccountMeta(params.current_authority, is_signer=True, is_writable=False),
        ],
    )


def decode_set_authority(instruction: Instruction) -> SetAuthorityParams:
    data = bytes(instruction.data)
    _expect(instruction, tuple(TOKEN_PROGRAM_IDS.values()), _SET_AUTHORITY, len(data))
    if len(data) not in (3, 35) or (data[2] == 1) != (len(data) == 35):
        raise ValueError("malformed SetAuthority data")
    new = Pubkey.from_bytes(data[3:35]) if data[2] == 1 else None
    mint, current = (meta.pubkey for meta in instruction.accounts[:2])
    return SetAuthorityParams(instruction.program_id, mint, current, new, data[1])
