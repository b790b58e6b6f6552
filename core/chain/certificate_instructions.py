"""Token-2022 instructions for the certificate mint: its extensions, burns and memos.

The certificate mint is NonTransferable (holders cannot move certificates past
the registry) with a PermanentDelegate (the registry key may burn from any
holder's account): retirement and cancellation burn with the delegate's
signature, and a transfer between holders is a burn from one and a mint to the
other in one transaction (supply unchanged). docs/CERTIFICATES.md says why.

Layout (spl-token-2022): a mint with extensions is the 82-byte base mint padded
to the 165-byte account size, one account-type byte (1 = mint), then TLV
entries (u16 type, u16 length, value). The extensions must be initialized
before InitializeMint2.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account

from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    CreateMintParams,
    initialize_mint2,
)

_BURN_CHECKED = 15
_INITIALIZE_NON_TRANSFERABLE_MINT = 32
_INITIALIZE_PERMANENT_DELEGATE = 35

EXTENSION_NON_TRANSFERABLE = 9
EXTENSION_PERMANENT_DELEGATE = 12
# Token-2022's AuthorityType: SetAuthority with this moves the permanent delegate.
AUTHORITY_TYPE_PERMANENT_DELEGATE = 8
_ACCOUNT_LEN = 165  # the base account size every extended mint is padded to
_TLV_HEADER = 4
# base + account type + NonTransferable (empty) + PermanentDelegate (a pubkey)
CERTIFICATE_MINT_SIZE = _ACCOUNT_LEN + 1 + _TLV_HEADER + _TLV_HEADER + 32

CERTIFICATE_DECIMALS = 6  # one token is one MWh, one base unit one Wh

ISSUE_MEMO = re.compile(r"^gridtokenx:gc:(\d+):(\d+)-(\d+)$")


def issue_memo(bundle_id: int, first_id: int, last_id: int) -> str:
    """The issuance memo (CONTRACT): `gridtokenx:gc:{bundle_id}:{first_id}-{last_id}`."""
    if not 0 < first_id <= last_id:
        raise ValueError(f"a Wh id range runs 1 <= first <= last, not {first_id}-{last_id}")
    return f"gridtokenx:gc:{bundle_id}:{first_id}-{last_id}"


def lifecycle_memo(action: str, certificate_id: int, first_id: int, last_id: int) -> str:
    """Retirement, cancellation and transfer memos: `gridtokenx:gc-{action}:{id}:{first}-{last}`."""
    if action not in ("retire", "cancel", "transfer"):
        raise ValueError(f"unknown certificate action {action!r}")
    return f"gridtokenx:gc-{action}:{certificate_id}:{first_id}-{last_id}"


def parse_issue_memo(text: str) -> tuple[int, int, int] | None:
    """(bundle_id, first_id, last_id) of an issuance memo, else None."""
    match = ISSUE_MEMO.fullmatch(text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


class BurnParams(NamedTuple):
    account: Pubkey
    mint: Pubkey
    authority: Pubkey  # the owner, or the mint's permanent delegate
    amount: int
    decimals: int
    token_program: Pubkey = TOKEN_2022_PROGRAM_ID


def burn_checked(params: BurnParams) -> Instruction:
    """BurnChecked: the program checks the decimals against the mint."""
    if isinstance(params.amount, bool) or not 0 < params.amount < 2**64:
        raise ValueError(f"a burn amount is a positive u64, not {params.amount!r}")
    data = struct.pack("<BQB", _BURN_CHECKED, params.amount, params.decimals)
    accounts = [
        AccountMeta(params.account, is_signer=False, is_writable=True),
        AccountMeta(params.mint, is_signer=False, is_writable=True),
        AccountMeta(params.authority, is_signer=True, is_writable=False),
    ]
    return Instruction(params.token_program, data, accounts)


def decode_burn_checked(instruction: Instruction) -> BurnParams:
    data = bytes(instruction.data)
    if len(data) != 10 or data[0] != _BURN_CHECKED:
        raise ValueError("not a BurnChecked instruction")
    account, mint, authority = (meta.pubkey for meta in instruction.accounts[:3])
    amount = struct.unpack_from("<Q", data, 1)[0]
    return BurnParams(account, mint, authority, amount, data[9], instruction.program_id)


def initialize_non_transferable_mint(mint: Pubkey) -> Instruction:
    return Instruction(
        TOKEN_2022_PROGRAM_ID,
        bytes([_INITIALIZE_NON_TRANSFERABLE_MINT]),
        [AccountMeta(mint, is_signer=False, is_writable=True)],
    )


def initialize_permanent_delegate(mint: Pubkey, delegate: Pubkey) -> Instruction:
    return Instruction(
        TOKEN_2022_PROGRAM_ID,
        bytes([_INITIALIZE_PERMANENT_DELEGATE]) + bytes(delegate),
        [AccountMeta(mint, is_signer=False, is_writable=True)],
    )


def create_certificate_mint(params: CreateMintParams, delegate: Pubkey) -> list[Instruction]:
    """Allocate a Token-2022 mint with NonTransferable and PermanentDelegate, then initialize."""
    if params.token_program != TOKEN_2022_PROGRAM_ID:
        raise ValueError("the certificate mint is a Token-2022 mint")
    allocate = create_account(
        CreateAccountParams(
            from_pubkey=params.payer,
            to_pubkey=params.mint,
            lamports=params.lamports,
            space=CERTIFICATE_MINT_SIZE,
            owner=TOKEN_2022_PROGRAM_ID,
        )
    )
    return [
        allocate,
        initialize_non_transferable_mint(params.mint),
        initialize_permanent_delegate(params.mint, delegate),
        initialize_mint2(params),
    ]


def mint_extensions(data: bytes) -> dict[int, bytes]:
    """The TLV extensions of a Token-2022 mint account (type -> value)."""
    found: dict[int, bytes] = {}
    offset = _ACCOUNT_LEN + 1
    while offset + _TLV_HEADER <= len(data):
        kind, length = struct.unpack_from("<HH", data, offset)
        if kind == 0:
            break
        found[kind] = data[offset + _TLV_HEADER : offset + _TLV_HEADER + length]
        offset += _TLV_HEADER + length
    return found


def permanent_delegate_of(data: bytes) -> Pubkey | None:
    value = mint_extensions(data).get(EXTENSION_PERMANENT_DELEGATE)
    return None if value is None or value == bytes(32) else Pubkey.from_bytes(value)
