"""GridTokenX's encrypted frame (`dlms-enc`): AES-256-GCM per device, and its keys at rest.

Their simulator (transport `aggregator_bridge.py`) seals the plaintext payload,
canonical JSON (sorted keys, no spaces), with the meter's 32-byte key, a random
12-byte nonce and AAD `"{device_id}:{counter}"`, and sends
`{"protocol": "dlms-enc", "device_id", "payload": {"enc": {"counter", "nonce",
"ciphertext"}}}` with nonce and ciphertext (tag appended) in standard base64.
The invocation counter must grow strictly per meter (a replay is refused when
stored, core.readings.samples).

Keys at rest: each device key is sealed (AES-256-GCM, AAD the meter's serial) with
a wrapping key kept 0600 under DATA_DIR (core.bootstrap), so the database alone
never holds a usable key. Keys appear in no event, log or answer. In memory, a
process keeps the ciphers of the keys it opened lately (`device_cipher`), keyed by the
sealed text as stored, so a re-provisioned key is opened afresh.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import DomainError
from core.readings.errors import InvalidFormat, ReadingRejected
from core.units import json_number

_HEX_KEY = re.compile(r"[0-9A-Fa-f]{64}")
_MAX_COUNTER = 2**63 - 1
# Ciphers kept per process: a few tens of MB at most, more meters than one api process
# serves between two ticks of theirs.
DEVICE_CIPHERS = 65_536


class DecryptFailed(ReadingRejected):
    """The frame does not open with the meter's key: tampered, wrong key, or none set."""

    code = "decrypt_failed"
    field = "payload.enc"


class EncryptionRequired(ReadingRejected):
    """A plaintext frame from a meter registered to send only encrypted ones."""

    code = "encryption_required"
    field = "protocol"


class InvalidDeviceKey(DomainError):
    code = "invalid_format"
    field = "aes_key"


@dataclass(frozen=True, slots=True)
class OpenedFrame:
    payload: Mapping[str, Any]
    counter: int


def parse_device_key(text: str) -> bytes:
    """A device's AES-256 key as 64 hex characters (their registry's form)."""
    if not isinstance(text, str) or not _HEX_KEY.fullmatch(text.strip()):
        raise InvalidDeviceKey("aes_key is 64 hex characters (32 bytes, AES-256)")
    return bytes.fromhex(text.strip())


def seal_device_key(wrap_key: bytes, serial: str, device_key: bytes) -> str:
    """The device key sealed for storage (base64 of nonce + ciphertext)."""
    nonce = os.urandom(12)
    sealed = AESGCM(wrap_key).encrypt(nonce, device_key, serial.encode())
    return base64.b64encode(nonce + sealed).decode()


def open_device_key(wrap_key: bytes, serial: str, stored: str) -> bytes:
    raw = base64.b64decode(stored)
    return AESGCM(wrap_key).decrypt(raw[:12], raw[12:], serial.encode())


@lru_cache(maxsize=DEVICE_CIPHERS)
def device_cipher(wrap_key: bytes, serial: str, sealed: str) -> AESGCM:
    """The AES-GCM cipher of meter `serial`'s key, sealed as `sealed` under `wrap_key`.

    Cached because unwrapping the key and building its cipher cost a frame more than
    opening it. The cipher is a pure function of the three arguments, so it cannot go
    stale: a key set again (rotated, re-provisioned) is stored as another sealed text
    (sealing draws a fresh nonce), read from the meter's row with every frame, and
    opened afresh; a key that does not open is not cached.
    """
    return AESGCM(open_device_key(wrap_key, serial, sealed))


def open_frame(
    device_id: str, payload: Mapping[str, Any], device_key: bytes | AESGCM
) -> OpenedFrame:
    """Authenticate and decrypt `payload.enc` with the meter's key (or its cipher,
    `device_cipher`); the inner payload and its counter.

    DecryptFailed for anything that does not open (their bridge answers 400);
    InvalidFormat for an envelope that is not one.
    """
    envelope = payload.get("enc")
    if not isinstance(envelope, Mapping):
        raise InvalidFormat(
            "an encrypted frame's payload is {enc: {counter, nonce, ciphertext}}",
            field="payload.enc",
        )
    counter = envelope.get("counter")
    is_int = isinstance(counter, int) and not isinstance(counter, bool)
    if not is_int or not 0 <= counter <= _MAX_COUNTER:
        raise InvalidFormat(
            "payload.enc.counter is a non-negative integer", field="payload.enc.counter"
        )
    nonce = _base64(envelope.get("nonce"), "payload.enc.nonce")
    if len(nonce) != 12:
        raise InvalidFormat("payload.enc.nonce is 12 bytes in base64", field="payload.enc.nonce")
    ciphertext = _base64(envelope.get("ciphertext"), "payload.enc.ciphertext")
    try:
        cipher = AESGCM(device_key) if isinstance(device_key, bytes) else device_key
        plaintext = cipher.decrypt(nonce, ciphertext, f"{device_id}:{counter}".encode())
    except (InvalidTag, ValueError) as exc:
        raise DecryptFailed(
            "the frame does not authenticate with this meter's key and "
            f'AAD "{device_id}:{counter}" (tampered, replayed under another counter, '
            "or another key)"
        ) from exc
    try:
        inner = json.loads(plaintext, parse_float=json_number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptFailed("the decrypted payload is not JSON") from exc
    if not isinstance(inner, Mapping):
        raise DecryptFailed("the decrypted payload is not a JSON object")
    return OpenedFrame(inner, counter)


def _base64(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or len(value) > 65_536:
        raise InvalidFormat(f"{field} is standard base64 text", field=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidFormat(f"{field} is not valid base64", field=field) from exc
