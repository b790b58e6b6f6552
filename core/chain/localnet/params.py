"""Reading JSON-RPC params the way agave does, with its -32602 messages on bad input."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import base58
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from core.chain.localnet.clock import normalize_commitment
from core.chain.localnet.errors import PACKET_DATA_SIZE, VERSIONED_TRANSACTION, invalid_params

# agave's "golden" limits on the encoded form of a PACKET_DATA_SIZE transaction.
MAX_BASE58_SIZE = 1683
MAX_BASE64_SIZE = 1644


def positional(params: Any, required: int, allowed: int | None = None) -> list[Any]:
    """The params array padded with None to `allowed` entries."""
    allowed = required if allowed is None else allowed
    if params is None:
        params = []
    if not isinstance(params, list):
        raise invalid_params("Invalid params: expected an array")
    if not required <= len(params) <= allowed:
        expected = str(required) if required == allowed else f"{required} to {allowed}"
        raise invalid_params(
            f"Invalid params: invalid length {len(params)}, expected {expected} elements"
        )
    return params + [None] * (allowed - len(params))


def config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_params("Invalid params: expected a configuration object")
    return value


def commitment(cfg: dict[str, Any], key: str = "commitment") -> str:
    try:
        return normalize_commitment(cfg.get(key))
    except ValueError as exc:
        raise invalid_params(f"Invalid params: {exc}") from None


def pubkey(value: Any) -> Pubkey:
    if not isinstance(value, str):
        raise invalid_params("Invalid params: expected a base-58 public key string")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def signature(value: Any) -> Signature:
    if not isinstance(value, str):
        raise invalid_params("Invalid params: expected a base-58 signature string")
    try:
        return Signature.from_string(value)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def blockhash(value: Any) -> Hash:
    if not isinstance(value, str):
        raise invalid_params("Invalid params: expected a base-58 hash string")
    try:
        return Hash.from_string(value)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def unsigned(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"Invalid params: {name} must be a non-negative integer")
    return value


def decode_wire(encoded: Any, encoding: str | None, default: str = "base58") -> bytes:
    """Wire bytes of an encoded transaction or message, with agave's size checks."""
    if not isinstance(encoded, str):
        raise invalid_params("Invalid params: expected an encoded transaction string")
    encoding = encoding or default
    if encoding == "base58":
        if len(encoded) > MAX_BASE58_SIZE:
            raise invalid_params(
                f"base58 encoded {VERSIONED_TRANSACTION} too large: {len(encoded)} bytes "
                f"(max: encoded/raw {MAX_BASE58_SIZE}/{PACKET_DATA_SIZE})"
            )
        try:
            wire = base58.b58decode(encoded)
        except ValueError as exc:
            raise invalid_params(f"invalid base58 encoding: {exc}") from None
    elif encoding == "base64":
        if len(encoded) > MAX_BASE64_SIZE:
            raise invalid_params(
                f"base64 encoded {VERSIONED_TRANSACTION} too large: {len(encoded)} bytes "
                f"(max: encoded/raw {MAX_BASE64_SIZE}/{PACKET_DATA_SIZE})"
            )
        try:
            wire = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise invalid_params(f"invalid base64 encoding: {exc}") from None
    else:
        raise invalid_params(
            f"Invalid params: unknown variant `{encoding}`, expected `base58` or `base64`"
        )
    if len(wire) > PACKET_DATA_SIZE:
        raise invalid_params(
            f"decoded {VERSIONED_TRANSACTION} too large: {len(wire)} bytes "
            f"(max: {PACKET_DATA_SIZE} bytes)"
        )
    return wire


def transaction(encoded: Any, encoding: str | None) -> tuple[bytes, VersionedTransaction]:
    """Decode, deserialise and sanitise a transaction as sendTransaction does."""
    wire = decode_wire(encoded, encoding)
    try:
        tx = VersionedTransaction.from_bytes(wire)
    except ValueError as exc:
        raise invalid_params(f"failed to deserialize {VERSIONED_TRANSACTION}: {exc}") from None
    try:
        tx.sanitize()
    except Exception as exc:  # solders raises its own SanitizeError types
        raise invalid_params(f"invalid transaction: {exc}") from None
    return wire, tx
