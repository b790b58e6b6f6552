"""Account reads: accounts, balances, SPL token balances, supply and accounts by owner.

Account objects are rendered by hand: solders writes `"space": null` where a node
writes the data length, and clients compare these. State is always the latest
(processed); the commitment only decides the context slot (see the docs).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import base58
import zstandard
from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.responses import GetBalanceResp, GetTokenAccountBalanceResp, GetTokenSupplyResp

from core.chain.localnet import params
from core.chain.localnet.errors import INVALID_REQUEST, RpcError, invalid_params
from core.chain.localnet.methods.cluster import SOLANA_CORE_VERSION, context
from core.chain.localnet.node import Node
from core.chain.localnet.rpc import result_of
from core.chain.localnet.tokens import (
    PROGRAM_NAMES,
    TOKEN_PROGRAMS,
    parse_mint,
    parse_token_account,
    parsed_json,
    ui_amount,
)

ACCOUNT_ENCODINGS = ("binary", "base58", "base64", "jsonParsed", "base64+zstd")
_MAX_MULTIPLE_ACCOUNTS = 100
MAX_BASE58_BYTES = 128


def account_encoding(cfg: dict[str, Any]) -> str:
    """The encoding asked for; like agave, the legacy base-58 `binary` when none is."""
    encoding = cfg.get("encoding") or "binary"
    if encoding not in ACCOUNT_ENCODINGS:
        expected = ", ".join(f"`{name}`" for name in ACCOUNT_ENCODINGS)
        raise invalid_params(
            f"Invalid params: unknown variant `{encoding}`, expected one of {expected}"
        )
    return encoding


def data_slice(cfg: dict[str, Any]) -> tuple[int, int] | None:
    wanted = cfg.get("dataSlice")
    if wanted is None:
        return None
    if not isinstance(wanted, dict):
        raise invalid_params("Invalid params: dataSlice must be {offset, length}")
    offset = params.unsigned(wanted.get("offset"), "dataSlice.offset")
    length = params.unsigned(wanted.get("length"), "dataSlice.length")
    return offset, length


def render_account(
    node: Node,
    account: Account,
    encoding: str,
    data_slice: tuple[int, int] | None = None,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """A UiAccount as a node encodes it (pubsub, not `strict`, base-58s data of any size)."""
    data: Any
    raw = account.data
    if encoding == "jsonParsed" and account.owner in TOKEN_PROGRAMS:
        parsed = parsed_json(account, node.decimals_of)
        if parsed is not None:
            program = PROGRAM_NAMES[account.owner]
            data = {"program": program, "parsed": parsed, "space": len(raw)}
            return _ui_account(account, data)
    if encoding == "jsonParsed":
        encoding = "base64"  # a node falls back to base64 for what it cannot parse
    if data_slice is not None:
        offset, length = data_slice
        raw = raw[offset : offset + length]
    if strict and encoding in ("binary", "base58") and len(raw) > MAX_BASE58_BYTES:
        raise RpcError(
            INVALID_REQUEST,
            f"Encoded binary (base 58) data should be less than {MAX_BASE58_BYTES} bytes, "
            "please use Base64 encoding.",
        )
    if encoding == "base64+zstd":
        data = [base64.b64encode(zstandard.ZstdCompressor().compress(raw)).decode(), encoding]
    elif encoding == "binary":
        data = base58.b58encode(raw).decode()
    else:
        text = base64.b64encode(raw) if encoding == "base64" else base58.b58encode(raw)
        data = [text.decode(), encoding]
    return _ui_account(account, data)


def _ui_account(account: Account, data: Any) -> dict[str, Any]:
    return {
        "lamports": account.lamports,
        "data": data,
        "owner": str(account.owner),
        "executable": account.executable,
        "rentEpoch": account.rent_epoch,
        "space": len(account.data),
    }


def with_context(slot: int, value: Any) -> str:
    ctx = {"slot": slot, "apiVersion": SOLANA_CORE_VERSION}
    return json.dumps({"context": ctx, "value": value}, separators=(",", ":"))


def get_account_info(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    key = params.pubkey(args[0])
    cfg = params.config(args[1])
    slot = node.clock.view_slot(params.commitment(cfg))
    account = node.account(key)
    value = (
        None
        if account is None
        else render_account(node, account, account_encoding(cfg), data_slice(cfg))
    )
    return with_context(slot, value)


def get_multiple_accounts(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    if not isinstance(args[0], list):
        raise invalid_params("Invalid params: expected an array of account addresses")
    if len(args[0]) > _MAX_MULTIPLE_ACCOUNTS:
        raise invalid_params(f"Too many inputs provided; max {_MAX_MULTIPLE_ACCOUNTS}")
    keys = [params.pubkey(item) for item in args[0]]
    cfg = params.config(args[1])
    slot = node.clock.view_slot(params.commitment(cfg))
    encoding, wanted_slice = account_encoding(cfg), data_slice(cfg)
    values = []
    for key in keys:
        account = node.account(key)
        values.append(
            None if account is None else render_account(node, account, encoding, wanted_slice)
        )
    return with_context(slot, values)


def get_balance(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    key = params.pubkey(args[0])
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    return result_of(GetBalanceResp(node.balance(key), context(slot)))


def get_token_account_balance(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    key = params.pubkey(args[0])
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    token = parse_token_account(node.account(key))
    decimals = None if token is None else node.decimals_of(token.mint)
    if token is None or decimals is None:
        raise invalid_params("Invalid param: not a Token account")
    return result_of(GetTokenAccountBalanceResp(ui_amount(token.amount, decimals), context(slot)))


def get_token_supply(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    key = params.pubkey(args[0])
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    mint = parse_mint(node.account(key))
    if mint is None:
        raise invalid_params("Invalid param: not a Token mint")
    return result_of(GetTokenSupplyResp(ui_amount(mint.supply, mint.decimals), context(slot)))


def _token_accounts_by(column: str, node: Node, raw_params: Any) -> str:
    """getTokenAccountsByOwner and getTokenAccountsByDelegate: one shape, two indexes."""
    args = params.positional(raw_params, 2, 3)
    holder = params.pubkey(args[0])
    wanted = args[1]
    if not isinstance(wanted, dict) or len(wanted) != 1 or not {"mint", "programId"} & set(wanted):
        raise invalid_params("Invalid params: filter must be {mint} or {programId}")
    mint: Pubkey | None = None
    program: Pubkey | None = None
    if "mint" in wanted:
        mint = params.pubkey(wanted["mint"])
    else:
        program = params.pubkey(wanted["programId"])
        if program not in TOKEN_PROGRAMS:
            raise invalid_params("Invalid param: unrecognized Token program id")
    cfg = params.config(args[2])
    slot = node.clock.view_slot(params.commitment(cfg))
    encoding, wanted_slice = account_encoding(cfg), data_slice(cfg)
    found = []
    for key in node.ledger.index.token_accounts(column, holder, mint):
        account = node.account(key)
        if account is None or (program is not None and account.owner != program):
            continue
        found.append(
            {"pubkey": str(key), "account": render_account(node, account, encoding, wanted_slice)}
        )
    return with_context(slot, found)


def get_token_accounts_by_owner(node: Node, raw_params: Any) -> str:
    return _token_accounts_by("token_owner", node, raw_params)


def get_token_accounts_by_delegate(node: Node, raw_params: Any) -> str:
    return _token_accounts_by("token_delegate", node, raw_params)


METHODS = {
    "getAccountInfo": get_account_info,
    "getMultipleAccounts": get_multiple_accounts,
    "getBalance": get_balance,
    "getTokenAccountBalance": get_token_account_balance,
    "getTokenSupply": get_token_supply,
    "getTokenAccountsByOwner": get_token_accounts_by_owner,
    "getTokenAccountsByDelegate": get_token_accounts_by_delegate,
}
