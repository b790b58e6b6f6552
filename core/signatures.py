"""The meter signature: ed25519 over a canonical message (CONTRACT "Meter signature").

    gridtokenx-reading:v1:{meter_serial}:{unix_ms}:{kwh}

unix_ms is the reading timestamp in whole milliseconds since the epoch and kwh
has exactly six decimals ("3.412500"), so the meter and the server build the
same bytes whatever form (string or number, "3.4125" or "3.41250") the JSON
carried. The signature is base58 of 64 bytes; the public key base58 of 32.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from solders.pubkey import Pubkey
from solders.signature import Signature

from core.units import format_kwh

MESSAGE_PREFIX = "gridtokenx-reading:v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def unix_ms(timestamp: datetime) -> int:
    """Whole milliseconds since the epoch, exactly (no float on the way)."""
    delta = timestamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def reading_message(meter_serial: str, timestamp: datetime, kwh: Decimal) -> bytes:
    return f"{MESSAGE_PREFIX}:{meter_serial}:{unix_ms(timestamp)}:{format_kwh(kwh)}".encode()


def parse_signature(text: str) -> Signature | None:
    """The 64-byte signature from base58, or None when it is not one."""
    try:
        return Signature.from_string(text)
    except (ValueError, TypeError):
        return None


def parse_pubkey(text: str) -> Pubkey | None:
    try:
        return Pubkey.from_string(text)
    except (ValueError, TypeError):
        return None


def verify_reading_signature(
    public_key: Pubkey | str, signature: Signature | str, message: bytes
) -> bool:
    """True when `signature` is the meter's ed25519 signature of `message`."""
    key = parse_pubkey(public_key) if isinstance(public_key, str) else public_key
    sig = parse_signature(signature) if isinstance(signature, str) else signature
    if key is None or sig is None:
        return False
    return sig.verify(key, message)
