"""`python -m simulator --protocol gridtokenx`: meters that speak GridTokenX's bridge form.

Two demo meters report every few seconds through one head-end (gateway) key to
`POST /v1/private-network/ingest`, as GridTokenX's own simulator does: one in the
plaintext `dlms` form, one in the encrypted `dlms-enc` form. Each tick carries the
tick's own energy (OBIS import/export Wh, energy_generated / energy_consumed) and
its signed net `kwh`, below zero whenever the house uses more than the panels give
(always at night). Built from docs/API.md ("GridTokenX bridge ingest"), not from
the server's code.

Keys: seed = sha256("{secret}:{meter}") as their simulator derives it, with a
secret of our own kept 0600 under DATA_DIR/simulator/, the AES key
HKDF-SHA256(seed, info "gridtokenx-aggregator-aes-256-gcm"). The gateway key is
kept there too, so a restarted simulator reuses everything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import base58
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from solders.keypair import Keypair

from simulator.client import ApiClient, ApiError
from simulator.energy import Site, consumption_kw, solar_kw
from simulator.fleet import FleetStore, _read_json, write_private_json

log = logging.getLogger("simulator")

GATEWAY = "SIM-HEADEND"
OBIS_IMPORT, OBIS_EXPORT = "1.1.1.8.0.255", "1.1.2.8.0.255"


@dataclass(frozen=True)
class BridgeMeter:
    serial: str
    owner: str
    site: Site
    encrypted: bool


BRIDGE_METERS = (
    BridgeMeter("GTX-SIM-BKK", "alice", Site("Bangkok", 7, 4.5), encrypted=False),
    BridgeMeter("GTX-SIM-SYD", "bob", Site("Sydney", 11, 5.5), encrypted=True),
)


def kwh_text(value: float) -> str:
    """The kWh as their bridge's Rust f64 Display writes it: `1`, `-0.75`, `0.00001`."""
    if value == int(value):
        return str(int(value))
    text = repr(value)  # the shortest digits that read back as this f64, as Rust's
    if "e" in text:  # Rust never writes an exponent
        text = f"{Decimal(text):f}"
    return text


class BridgeKeys:
    def __init__(self, secret: str, serial: str) -> None:
        self.seed = hashlib.sha256(f"{secret}:{serial}".encode()).digest()
        self.keypair = Keypair.from_seed(self.seed)

    @property
    def public_key_hex(self) -> str:
        return bytes(self.keypair.pubkey()).hex()

    @property
    def aes_key(self) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"gridtokenx-aggregator-aes-256-gcm",
        ).derive(self.seed)


def tick_payload(
    meter: BridgeMeter, keys: BridgeKeys, at: datetime, tick: timedelta
) -> dict[str, Any]:
    """One tick's OBIS payload, signed over {device_id}:{kwh}:{timestamp_ms}."""
    at = at.astimezone(UTC).replace(microsecond=0)
    hours = tick.total_seconds() / 3600
    middle = at - tick / 2
    generated = round(solar_kw(meter.site, meter.serial, middle) * hours, 6)
    consumed = round(consumption_kw(meter.site, meter.serial, middle) * hours, 6)
    net = round(generated - consumed, 6)
    message = f"{meter.serial}:{kwh_text(net)}:{int(at.timestamp()) * 1000}"
    signature = keys.keypair.sign_message(message.encode())
    return {
        OBIS_IMPORT: round(consumed * 1000, 3),
        OBIS_EXPORT: round(generated * 1000, 3),
        "kwh": net,
        "energy_generated": generated,
        "energy_consumed": consumed,
        "timestamp": at.isoformat(),
        "signature": base58.b58encode(bytes(signature)).decode(),
        "1.1.32.7.0.255": 230.0,
        "1.1.14.7.0.255": 50.0,
        "1.1.16.7.0.255": round((consumed - generated) / hours, 4),
    }


def frame(meter: BridgeMeter, keys: BridgeKeys, payload: dict[str, Any], counter: int) -> dict:
    if not meter.encrypted:
        return {"protocol": "dlms", "device_id": meter.serial, "payload": payload}
    plaintext = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    nonce = os.urandom(12)
    sealed = AESGCM(keys.aes_key).encrypt(nonce, plaintext, f"{meter.serial}:{counter}".encode())
    envelope = {
        "counter": counter,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return {"protocol": "dlms-enc", "device_id": meter.serial, "payload": {"enc": envelope}}


class BridgeFleet:
    """Registers the two meters and the gateway (once), then sends their ticks."""

    def __init__(self, client: ApiClient, store: FleetStore) -> None:
        self.client = client
        self.path = store.root / "gridtokenx.json"
        state = _read_json(self.path) or {}
        self.secret: str = state.get("secret") or secrets.token_hex(16)
        self.gateway_key: str | None = state.get("gateway_key")
        self.keys = {m.serial: BridgeKeys(self.secret, m.serial) for m in BRIDGE_METERS}

    def _save(self) -> None:
        write_private_json(self.path, {"secret": self.secret, "gateway_key": self.gateway_key})

    def ensure(self) -> None:
        known = self.client.meters()
        for meter in BRIDGE_METERS:
            if meter.serial in known:
                continue
            keys = self.keys[meter.serial]
            body: dict[str, Any] = {
                "serial": meter.serial,
                "owner_username": meter.owner,
                "public_key": keys.public_key_hex,  # their registry's hex form
            }
            if meter.encrypted:
                body.update(aes_key=keys.aes_key.hex(), encryption_required=True)
            self.client.call("POST", "/api/admin/meters", json=body)
            log.info("registered GridTokenX meter %s", meter.serial)
        serials = [m.serial for m in BRIDGE_METERS]
        gateways = {g["name"]: g for g in self.client.call("GET", "/api/admin/gateways")}
        if GATEWAY not in gateways:
            created = self.client.call(
                "POST", "/api/admin/gateways", json={"name": GATEWAY, "meters": serials}
            )
            self.gateway_key = created["api_key"]
        elif self.gateway_key is None or gateways[GATEWAY]["status"] != "active":
            rotated = self.client.call("POST", f"/api/admin/gateways/{GATEWAY}/rotate-key")
            self.gateway_key = rotated["api_key"]
        self._save()

    def tick(self, at: datetime, tick: timedelta) -> dict[str, int]:
        """Send every meter's tick ending at `at`; answers by HTTP status."""
        assert self.gateway_key is not None
        statuses: dict[str, int] = {}
        counter = time.time_ns() // 1000  # their simulator's wall-clock microsecond counter
        for meter in BRIDGE_METERS:
            keys = self.keys[meter.serial]
            body = frame(meter, keys, tick_payload(meter, keys, at, tick), counter)
            response = self.client.http.post(
                "/v1/private-network/ingest", json=body, headers={"X-API-KEY": self.gateway_key}
            )
            statuses[meter.serial] = response.status_code
            if response.status_code >= 400:
                log.warning("%s: %s %s", meter.serial, response.status_code, response.text[:200])
        return statuses

    def run(self, stop: threading.Event, tick_secs: float) -> None:
        tick = timedelta(seconds=tick_secs)
        while not stop.is_set():
            try:
                self.tick(datetime.now(UTC), tick)
            except ApiError as exc:
                log.warning("tick failed: %s", exc)
            stop.wait(tick_secs)
