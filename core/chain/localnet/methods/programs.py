"""Scans over every account the node holds: by program, largest holders, total supply.

The ledger indexes each account's owner, lamports and token fields in the same
commit as the account itself, so these scans cover every account ever written
through the node. getProgramAccounts filters as agave does (at most 4; memcmp
bytes at most 128, base58 by default; dataSize; tokenAccountState).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import base58
from solders.account import Account

from core.chain.localnet import params
from core.chain.localnet.errors import invalid_params
from core.chain.localnet.methods.accounts import (
    account_encoding,
    data_slice,
    render_account,
    with_context,
)
from core.chain.localnet.node import Node
from core.chain.localnet.tokens import parse_mint, parse_token_account, ui_amount

MAX_FILTERS = 4
_MAX_MEMCMP_BYTES = 128
_MAX_BASE58_CHARS = 175
_MAX_BASE64_CHARS = 172
_LARGEST = 20
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class Filter:
    data_size: int | None = None
    offset: int = 0
    bytes_: bytes | None = None
    token_account_state: bool = False

    def allows(self, account: Account) -> bool:
        data = account.data
        if self.data_size is not None:
            return len(data) == self.data_size
        if self.token_account_state:
            return parse_token_account(account) is not None
        assert self.bytes_ is not None
        end = self.offset + len(self.bytes_)
        return (
            self.offset <= len(data) and end <= len(data) and data[self.offset : end] == self.bytes_
        )


def _too_large() -> Exception:
    return invalid_params("Invalid param: DataTooLarge")


def _base58_bytes(text: str) -> bytes:
    if len(text) > _MAX_BASE58_CHARS:
        raise _too_large()
    for index, character in enumerate(text):
        if character not in _BASE58_ALPHABET:
            raise invalid_params(
                "Invalid param: Base58DecodeError(InvalidCharacter "
                f"{{ character: '{character}', index: {index} }})"
            )
    return base58.b58decode(text)


def _memcmp(spec: Any) -> Filter:
    if not isinstance(spec, dict) or "offset" not in spec or "bytes" not in spec:
        raise invalid_params("Invalid params: memcmp needs offset and bytes")
    offset = params.unsigned(spec["offset"], "memcmp.offset")
    raw, encoding = spec["bytes"], spec.get("encoding")
    if isinstance(raw, list):
        if not all(isinstance(b, int) and 0 <= b < 256 for b in raw):
            raise invalid_params("Invalid params: memcmp bytes must be integers 0..255")
        value = bytes(raw)
    elif not isinstance(raw, str):
        raise invalid_params("Invalid params: memcmp bytes must be a string or a byte array")
    elif encoding in (None, "base58", "binary"):
        value = _base58_bytes(raw)
    elif encoding == "base64":
        if len(raw) > _MAX_BASE64_CHARS:
            raise _too_large()
        try:
            value = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise invalid_params("Invalid param: Base64DecodeError(InvalidPadding)") from None
    else:
        raise invalid_params(
            f"Invalid params: unknown variant `{encoding}`, expected one of "
            "`base58`, `base64`, `bytes`"
        )
    if len(value) > _MAX_MEMCMP_BYTES:
        raise _too_large()
    return Filter(offset=offset, bytes_=value)


def parse_filters(value: Any) -> list[Filter]:
    """agave's RpcFilterType list, verified; shared with programSubscribe."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_params("Invalid params: filters must be an array")
    if len(value) > MAX_FILTERS:
        raise invalid_params(f"Too many filters provided; max {MAX_FILTERS}")
    filters = []
    for item in value:
        if item == "tokenAccountState":
            filters.append(Filter(token_account_state=True))
        elif isinstance(item, dict) and set(item) == {"dataSize"}:
            filters.append(Filter(data_size=params.unsigned(item["dataSize"], "dataSize")))
        elif isinstance(item, dict) and set(item) == {"memcmp"}:
            filters.append(_memcmp(item["memcmp"]))
        else:
            raise invalid_params(
                "Invalid params: unknown variant, expected one of "
                "`dataSize`, `memcmp`, `tokenAccountState`"
            )
    return filters


def get_program_accounts(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    program = params.pubkey(args[0])
    cfg = params.config(args[1])
    filters = parse_filters(cfg.get("filters"))
    slot = node.clock.view_slot(params.commitment(cfg))
    encoding, wanted_slice = account_encoding(cfg), data_slice(cfg)
    found = [
        {"pubkey": str(key), "account": render_account(node, account, encoding, wanted_slice)}
        for key, account in node.ledger.index.owned_by(program)
        if all(f.allows(account) for f in filters)
    ]
    if cfg.get("withContext"):
        return with_context(slot, found)
    return json.dumps(found, separators=(",", ":"))


def get_token_largest_accounts(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 1, 2)
    mint_key = params.pubkey(args[0])
    slot = node.clock.view_slot(params.commitment(params.config(args[1])))
    mint = parse_mint(node.account(mint_key))
    if mint is None:
        raise invalid_params("Invalid param: not a Token mint")
    holders = []
    for key in node.ledger.index.token_accounts("token_mint", mint_key):
        token = parse_token_account(node.account(key))
        if token is not None:
            holders.append((token.amount, str(key)))
    holders.sort(key=lambda item: (-item[0], item[1]))
    value = []
    for amount, address in holders[:_LARGEST]:
        shown = ui_amount(amount, mint.decimals)
        value.append(
            {
                "address": address,
                "amount": shown.amount,
                "decimals": shown.decimals,
                "uiAmount": shown.ui_amount,
                "uiAmountString": shown.ui_amount_string,
            }
        )
    return with_context(slot, value)


def get_largest_accounts(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    cfg = params.config(args[0])
    slot = node.clock.view_slot(params.commitment(cfg))
    wanted = cfg.get("filter")
    if wanted not in (None, "circulating", "nonCirculating"):
        raise invalid_params(
            f"Invalid params: unknown variant `{wanted}`, "
            "expected `circulating` or `nonCirculating`"
        )
    # Nothing here is non-circulating (no stake or foundation accounts exist).
    accounts = [] if wanted == "nonCirculating" else node.ledger.index.largest(_LARGEST)
    return with_context(
        slot, [{"lamports": lamports, "address": key} for key, lamports in accounts]
    )


def get_supply(node: Node, raw_params: Any) -> str:
    args = params.positional(raw_params, 0, 1)
    cfg = params.config(args[0])
    slot = node.clock.view_slot(params.commitment(cfg))
    total = node.ledger.index.total_lamports()
    value = {"total": total, "circulating": total, "nonCirculating": 0}
    value["nonCirculatingAccounts"] = []
    return with_context(slot, value)


METHODS = {
    "getProgramAccounts": get_program_accounts,
    "getTokenLargestAccounts": get_token_largest_accounts,
    "getLargestAccounts": get_largest_accounts,
    "getSupply": get_supply,
}
