"""A stored transaction in each encoding getTransaction, getBlock and blockSubscribe offer.

json: the raw message; jsonParsed: account keys with their roles and every
instruction, inner ones included, parsed where agave parses it; base64 and
base58: the wire bytes; "accounts" (getBlock's transactionDetails): keys and
balances only. The meta is stored once (execution.py) and reshaped here.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import base58
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import Legacy, VersionedTransaction
from solders.transaction_status import (
    UiAddressTableLookup,
    UiCompiledInstruction,
    UiRawMessage,
    UiTransaction,
)

from core.chain.localnet.errors import invalid_params, unsupported_version
from core.chain.localnet.instruction_parsers import parse_instruction
from core.chain.localnet.records import TransactionRecord
from core.chain.localnet.tokens import expand_snapshot

TRANSACTION_ENCODINGS = ("json", "jsonParsed", "base64", "base58", "binary")

# agave's reserved account keys (builtins and sysvars) are never shown as writable.
_RESERVED = frozenset(
    Pubkey.from_string(key)
    for key in (
        "11111111111111111111111111111111",
        "AddressLookupTab1e1111111111111111111111111",
        "BPFLoader1111111111111111111111111111111111",
        "BPFLoader2111111111111111111111111111111111",
        "BPFLoaderUpgradeab1e11111111111111111111111",
        "ComputeBudget111111111111111111111111111111",
        "Config1111111111111111111111111111111111111",
        "Ed25519SigVerify111111111111111111111111111",
        "Feature111111111111111111111111111111111111",
        "KeccakSecp256k11111111111111111111111111111",
        "NativeLoader1111111111111111111111111111111",
        "Stake11111111111111111111111111111111111111",
        "Vote111111111111111111111111111111111111111",
        "SysvarC1ock11111111111111111111111111111111",
        "SysvarEpochSchedu1e111111111111111111111111",
        "SysvarFees111111111111111111111111111111111",
        "Sysvar1nstructions1111111111111111111111111",
        "SysvarRecentB1ockHashes11111111111111111111",
        "SysvarRent111111111111111111111111111111111",
        "SysvarRewards111111111111111111111111111111",
        "SysvarS1otHashes111111111111111111111111111",
        "SysvarS1otHistory11111111111111111111111111",
        "SysvarStakeHistory1111111111111111111111111",
        "Sysvar1111111111111111111111111111111111111",
    )
)


def transaction_encoding(cfg: dict[str, Any], default: str = "json") -> str:
    encoding = cfg.get("encoding") or default
    if encoding not in TRANSACTION_ENCODINGS:
        raise invalid_params(
            f"Invalid params: unknown variant `{encoding}`, expected one of "
            "`binary`, `base64`, `base58`, `json`, `jsonParsed`"
        )
    return encoding


def check_version(tx: VersionedTransaction, max_version: int | None) -> Any:
    """The `version` field to show, or agave's error when the client cannot take it."""
    version = tx.version()
    if version == Legacy.Legacy:
        return None if max_version is None else "legacy"
    if max_version is None or int(version) > max_version:
        raise unsupported_version(int(version))
    return int(version)


def encode_with_meta(
    record: TransactionRecord,
    encoding: str,
    max_version: int | None,
    decimals_of: Any,
    *,
    details: str = "full",
    show_rewards: bool = True,
) -> dict[str, Any]:
    """{"transaction", "meta", "version"?} as EncodedTransactionWithStatusMeta."""
    tx = VersionedTransaction.from_bytes(record.raw)
    version = check_version(tx, max_version)
    meta = stored_meta(record, decimals_of)
    keys = _all_keys(tx, meta)
    if details == "accounts":
        result: dict[str, Any] = {
            "transaction": {
                "signatures": [str(s) for s in tx.signatures],
                "accountKeys": _parsed_keys(tx, meta),
            },
            "meta": _simple_meta(meta, show_rewards),
        }
    else:
        if encoding == "jsonParsed":
            meta = _parsed_meta(meta, keys)
        if not show_rewards:
            meta["rewards"] = None
        result = {"transaction": _encode(tx, record.raw, encoding, meta, keys), "meta": meta}
    if version is not None:
        result["version"] = version
    return result


def stored_meta(record: TransactionRecord, decimals_of: Any) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(record.meta_json)
    for field, snapshot in (
        ("preTokenBalances", record.pre_tokens),
        ("postTokenBalances", record.post_tokens),
    ):
        balances = expand_snapshot(snapshot, decimals_of)
        meta[field] = [json.loads(balance.to_json()) for balance in balances]
    if meta.get("rewards") is None:
        meta["rewards"] = []
    return meta


def _all_keys(tx: VersionedTransaction, meta: dict[str, Any]) -> list[Pubkey]:
    loaded = meta.get("loadedAddresses") or {}
    extra = [Pubkey.from_string(k) for k in loaded.get("writable", []) + loaded.get("readonly", [])]
    return list(tx.message.account_keys) + extra


def _encode(
    tx: VersionedTransaction, raw: bytes, encoding: str, meta: dict[str, Any], keys: list[Pubkey]
) -> Any:
    if encoding == "base64":
        return [base64.b64encode(raw).decode(), "base64"]
    if encoding == "base58":
        return [base58.b58encode(raw).decode(), "base58"]
    if encoding == "binary":
        return base58.b58encode(raw).decode()
    message = tx.message
    if encoding == "jsonParsed":
        parsed: dict[str, Any] = {
            "accountKeys": _parsed_keys(tx, meta),
            "recentBlockhash": str(message.recent_blockhash),
            "instructions": [
                parse_instruction(
                    ix.program_id_index, bytes(ix.accounts), bytes(ix.data), keys, None
                )
                for ix in message.instructions
            ],
        }
        if isinstance(message, MessageV0):
            parsed["addressTableLookups"] = _lookups(message)
        return {"signatures": [str(s) for s in tx.signatures], "message": parsed}
    instructions = [
        UiCompiledInstruction(
            ix.program_id_index, bytes(ix.accounts), base58.b58encode(bytes(ix.data)).decode(), None
        )
        for ix in message.instructions
    ]
    lookups = (
        None
        if isinstance(message, Message)
        else [
            UiAddressTableLookup(
                lookup.account_key, bytes(lookup.writable_indexes), bytes(lookup.readonly_indexes)
            )
            for lookup in message.address_table_lookups
        ]
    )
    ui_message = UiRawMessage(
        message.header, message.account_keys, message.recent_blockhash, instructions, lookups
    )
    return json.loads(UiTransaction(tx.signatures, ui_message).to_json())


def _lookups(message: MessageV0) -> list[dict[str, Any]]:
    return [
        {
            "accountKey": str(lookup.account_key),
            "writableIndexes": list(bytes(lookup.writable_indexes)),
            "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
        }
        for lookup in message.address_table_lookups
    ]


def _parsed_keys(tx: VersionedTransaction, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Each account with writable, signer and source, as agave's parse_accounts."""
    message = tx.message
    header = message.header
    static = list(message.account_keys)
    signed = header.num_required_signatures
    invoked = {static[ix.program_id_index] for ix in message.instructions}
    result = []
    for index, key in enumerate(static):
        if index < signed:
            writable = index < signed - header.num_readonly_signed_accounts
        else:
            writable = index < len(static) - header.num_readonly_unsigned_accounts
        writable = writable and key not in _RESERVED and key not in invoked
        result.append(
            {
                "pubkey": str(key),
                "writable": writable,
                "signer": index < signed,
                "source": "transaction",
            }
        )
    loaded = meta.get("loadedAddresses") or {}
    for group, writable in (("writable", True), ("readonly", False)):
        for key in loaded.get(group, []):
            shown = writable and Pubkey.from_string(key) not in _RESERVED
            result.append(
                {"pubkey": key, "writable": shown, "signer": False, "source": "lookupTable"}
            )
    return result


def _parsed_meta(meta: dict[str, Any], keys: list[Pubkey]) -> dict[str, Any]:
    parsed = dict(meta)
    parsed.pop("loadedAddresses", None)
    inner = meta.get("innerInstructions")
    if inner is not None:
        parsed["innerInstructions"] = [
            {
                "index": group["index"],
                "instructions": [
                    parse_instruction(
                        ix["programIdIndex"],
                        ix["accounts"],
                        base58.b58decode(ix["data"]),
                        keys,
                        ix.get("stackHeight"),
                    )
                    for ix in group["instructions"]
                ],
            }
            for group in inner
        ]
    return parsed


_SIMPLE_META_FIELDS = ("err", "status", "fee", "preBalances", "postBalances")


def _simple_meta(meta: dict[str, Any], show_rewards: bool) -> dict[str, Any]:
    simple = {field: meta.get(field) for field in _SIMPLE_META_FIELDS}
    simple["preTokenBalances"] = meta.get("preTokenBalances", [])
    simple["postTokenBalances"] = meta.get("postTokenBalances", [])
    if show_rewards:
        simple["rewards"] = meta.get("rewards") or []
    return simple
