"""SPL Token account and mint layouts, read the way a real RPC node presents them.

The node answers getTokenAccountBalance, getTokenSupply, jsonParsed account data
and the pre/post token balances of getTransaction from raw account bytes, so the
layouts live here once. Token-2022 shares the base layouts; its extensions follow
byte 165 and are not decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from solders.account import Account
from solders.account_decoder import UiTokenAmount
from solders.pubkey import Pubkey
from solders.transaction_status import UiTransactionTokenBalance

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)
PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}

MINT_LEN = 82
ACCOUNT_LEN = 165
# Token-2022 puts an account-type byte right after the base account length.
_ACCOUNT_TYPE_MINT, _ACCOUNT_TYPE_ACCOUNT = 1, 2
_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}


@dataclass(frozen=True, slots=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: int
    native_reserve: int | None
    delegated_amount: int
    close_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class Mint:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None


def _kind(account: Account) -> str | None:
    """'account', 'mint' or None, by owner and layout (as the RPC account decoder does)."""
    if account.owner not in TOKEN_PROGRAMS:
        return None
    size = len(account.data)
    if size == ACCOUNT_LEN:
        return "account"
    if size == MINT_LEN:
        return "mint"
    if account.owner == TOKEN_2022_PROGRAM_ID and size > ACCOUNT_LEN:
        kind = account.data[ACCOUNT_LEN]
        return {_ACCOUNT_TYPE_MINT: "mint", _ACCOUNT_TYPE_ACCOUNT: "account"}.get(kind)
    return None


def _option_key(data: bytes, at: int) -> Pubkey | None:
    return Pubkey.from_bytes(data[at + 4 : at + 36]) if data[at] else None


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")


def parse_token_account(account: Account | None) -> TokenAccount | None:
    if account is None or _kind(account) != "account":
        return None
    data = account.data
    if data[108] == 0:  # uninitialized: not a token account yet
        return None
    return TokenAccount(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=_u64(data, 64),
        delegate=_option_key(data, 72),
        state=data[108],
        native_reserve=_u64(data, 113) if data[109] else None,
        delegated_amount=_u64(data, 121),
        close_authority=_option_key(data, 129),
    )


def parse_mint(account: Account | None) -> Mint | None:
    if account is None or _kind(account) != "mint":
        return None
    data = account.data
    if not data[45]:
        return None
    return Mint(
        mint_authority=_option_key(data, 0),
        supply=_u64(data, 36),
        decimals=data[44],
        is_initialized=True,
        freeze_authority=_option_key(data, 46),
    )


def token_index_keys(account: Account) -> tuple[bytes | None, bytes | None, bytes | None]:
    """Raw owner, mint and delegate of an initialized token account: the ledger indexes them."""
    if _kind(account) != "account" or account.data[108] == 0:
        return None, None, None
    data = account.data
    delegate = bytes(data[76:108]) if data[72] else None
    return bytes(data[32:64]), bytes(data[0:32]), delegate


_SNAPSHOT_ENTRY = 74  # index, mint, owner, amount, program flag


def balance_snapshot(accounts: Sequence[Account | None]) -> bytes:
    """The token accounts among a transaction's accounts, packed for the ledger.

    Per entry: account index (1 byte), the account's first 72 bytes (mint, owner,
    amount) and 1 for Token-2022. Packing raw bytes at execution time keeps the
    hot path free of per-account objects; getTransaction expands them.
    """
    packed = bytearray()
    for index, account in enumerate(accounts):
        if account is None or _kind(account) != "account":
            continue
        data = account.data
        if data[108] == 0:
            continue
        packed.append(index)
        packed += data[:72]
        packed.append(account.owner == TOKEN_2022_PROGRAM_ID)
    return bytes(packed)


def expand_snapshot(
    snapshot: bytes, decimals_of: Callable[[Pubkey], int | None]
) -> list[UiTransactionTokenBalance]:
    balances = []
    for at in range(0, len(snapshot), _SNAPSHOT_ENTRY):
        entry = snapshot[at : at + _SNAPSHOT_ENTRY]
        mint = Pubkey.from_bytes(entry[1:33])
        decimals = decimals_of(mint)
        if decimals is None:
            continue
        program = TOKEN_2022_PROGRAM_ID if entry[73] else TOKEN_PROGRAM_ID
        amount = ui_amount(_u64(entry, 65), decimals)
        owner = Pubkey.from_bytes(entry[33:65])
        balances.append(UiTransactionTokenBalance(entry[0], mint, amount, owner, program))
    return balances


def amount_string(amount: int, decimals: int) -> str:
    """The RPC's uiAmountString: exact, trailing zeros and point trimmed."""
    if decimals == 0:
        return str(amount)
    whole, fraction = divmod(amount, 10**decimals)
    text = f"{whole}.{fraction:0{decimals}d}".rstrip("0").rstrip(".")
    return text


def ui_amount(amount: int, decimals: int) -> UiTokenAmount:
    return UiTokenAmount(
        amount / 10**decimals, decimals, str(amount), amount_string(amount, decimals)
    )


def _key(value: Pubkey | None) -> str | None:
    return None if value is None else str(value)


def parsed_json(account: Account, decimals_of: Any) -> dict[str, Any] | None:
    """The `parsed` object of jsonParsed encoding, or None when not a token account or mint.

    `decimals_of(mint) -> int | None` resolves a token account's decimals.
    """
    mint = parse_mint(account)
    if mint is not None:
        info = {
            "decimals": mint.decimals,
            "freezeAuthority": _key(mint.freeze_authority),
            "isInitialized": mint.is_initialized,
            "mintAuthority": _key(mint.mint_authority),
            "supply": str(mint.supply),
        }
        return {"info": info, "type": "mint"}
    token = parse_token_account(account)
    if token is None:
        return None
    decimals = decimals_of(token.mint)
    if decimals is None:
        return None
    info: dict[str, Any] = {
        "isNative": token.native_reserve is not None,
        "mint": str(token.mint),
        "owner": str(token.owner),
        "state": _STATES.get(token.state, "uninitialized"),
        "tokenAmount": _ui_json(token.amount, decimals),
    }
    if token.delegate is not None:
        info["delegate"] = str(token.delegate)
        info["delegatedAmount"] = _ui_json(token.delegated_amount, decimals)
    if token.native_reserve is not None:
        info["rentExemptReserve"] = _ui_json(token.native_reserve, decimals)
    if token.close_authority is not None:
        info["closeAuthority"] = str(token.close_authority)
    return {"info": info, "type": "account"}


def _ui_json(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": amount_string(amount, decimals),
    }
