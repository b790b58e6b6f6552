"""What GridTokenX's smart-meter simulator sends, rebuilt independently for tests.

Read from gridtokenx-smartmeter-simulator `transport/aggregator_bridge.py`: keys
from sha256("{secret}:{meter_id}"), public key as 64 hex, kwh net = round(generated
- consumed, 6) signed as Python formats it with ".0" dropped for integral values,
timestamp in whole seconds (×1000 in the message), OBIS import/export as the tick's
Wh. This is the tests' oracle for their wire form: it does not use core's formatter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import base58
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from solders.keypair import Keypair

SECRET = "gridtokenx-sim"
URL = "/v1/private-network/ingest"


def seed(meter_id: str, secret: str = SECRET) -> bytes:
    return hashlib.sha256(f"{secret}:{meter_id}".encode()).digest()


def keypair(meter_id: str, secret: str = SECRET) -> Keypair:
    return Keypair.from_seed(seed(meter_id, secret))


def public_key_hex(meter_id: str, secret: str = SECRET) -> str:
    return bytes(keypair(meter_id, secret).pubkey()).hex()


def aes_key(meter_id: str, secret: str = SECRET) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gridtokenx-aggregator-aes-256-gcm"
    ).derive(seed(meter_id, secret))


def their_kwh_text(value: float) -> str:
    # Their simulator's stand-in for Rust's f64 Display: integral values lose ".0".
    return str(int(value)) if value == int(value) else repr(value)


def payload(
    meter_id: str,
    *,
    generated: float,
    consumed: float,
    at: datetime,
    signer: Keypair | None = None,
    zone_code: int | None = 3,
    interval_secs: float = 5.0,
) -> dict[str, Any]:
    at = at.astimezone(UTC).replace(microsecond=0)
    timestamp_ms = int(at.timestamp()) * 1000
    net = round(generated - consumed, 6)
    message = f"{meter_id}:{their_kwh_text(net)}:{timestamp_ms}"
    signature = (signer or keypair(meter_id)).sign_message(message.encode())
    body: dict[str, Any] = {
        "1.1.1.8.0.255": round(consumed * 1000.0, 3),
        "1.1.2.8.0.255": round(generated * 1000.0, 3),
        "kwh": net,
        "energy_generated": round(generated, 6),
        "energy_consumed": round(consumed, 6),
        "timestamp": at.isoformat(),
        "signature": base58.b58encode(bytes(signature)).decode(),
        "1.1.32.7.0.255": 230.12,
        "1.1.31.7.0.255": 4.204,
        "1.1.14.7.0.255": 50.01,
        "1.1.13.7.0.255": 0.98,
        "1.1.16.7.0.255": round((consumed - generated) / (interval_secs / 3600.0), 4),
    }
    if zone_code:
        body["zone_code"] = str(zone_code)
    return body


def plain(meter_id: str, **kwargs: Any) -> dict[str, Any]:
    return {"protocol": "dlms", "device_id": meter_id, "payload": payload(meter_id, **kwargs)}


def encrypted(
    meter_id: str, counter: int, *, key: bytes | None = None, nonce: bytes | None = None, **kwargs
) -> dict[str, Any]:
    obis = payload(meter_id, **kwargs)
    plaintext = json.dumps(obis, separators=(",", ":"), sort_keys=True).encode()
    nonce = nonce or os.urandom(12)
    sealed = AESGCM(key or aes_key(meter_id)).encrypt(
        nonce, plaintext, f"{meter_id}:{counter}".encode()
    )
    envelope = {
        "counter": counter,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return {"protocol": "dlms-enc", "device_id": meter_id, "payload": {"enc": envelope}}


def post(client, body: dict[str, Any], api_key: str):
    """As their httpx client posts it: json.dumps of the body, X-API-KEY."""
    return client.post(
        URL,
        content=json.dumps(body),
        headers={"X-API-KEY": api_key, "Content-Type": "application/json"},
    )
