"""Meters: register them with their ed25519 key, issue API keys, suspend and resume.

Public API (same rules for the API and the dashboard):

- `register_meter(session, serial, owner_username, public_key, *, by="system",
  device=None) -> RegisteredMeter(meter, api_key)`: `public_key` as base58 or 64
  hex characters (stored as base58); the plaintext API key is returned this once;
  only its SHA-256 is stored. `device` holds the registry fields of
  core.device_attributes (technology, capacity_kw, ...), checked there.
  The owner must be an enabled prosumer with a wallet (their readings mint to
  it). Commits. Raises `InvalidMeter`
  (`invalid_format`), `NotFound` (`not_found`, unknown owner), `InvalidOwner`
  (`invalid_owner`) or `SerialTaken` (`serial_taken`).
- `set_meter_status(session, serial, status, *, by="system") -> Meter` with
  status "active" or "suspended" (`suspend_meter` / `resume_meter` are
  shorthands). A suspended meter's submissions are refused (`meter_suspended`).
- `update_device_attributes(session, serial, values, *, by="system") -> Meter`:
  an admin sets or clears (blank) registry fields; the old and new values go
  into a `meter_changed` event (`device_updated`), the audit trail.
- `rotate_meter_key(session, serial, *, by="system") -> RegisteredMeter`: a new
  key, the old one stops working at once.
- `authenticate_meter(session, api_key) -> Meter`: the meter holding this key
  (any status), else `MeterUnauthenticated` (`unauthenticated`).

Why SHA-256 and not argon2: the key is 256 random bits, so a slow hash adds no
protection, and ingest looks a key up on every request by its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import base58
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterStatus, Reporting, Role, User
from core.device_attributes import parse_device_attributes, shown
from core.errors import Conflict, DomainError, NotFound
from core.events import EventType, publish
from core.text import is_clean_text

# The serial is a field of the signed message `gridtokenx-reading:v1:{serial}:...`;
# it must not contain ':' or the message would be ambiguous.
SERIAL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
API_KEY_PREFIX = "gtx_"
_HEX_KEY = re.compile(r"[0-9A-Fa-f]{64}")


class InvalidMeter(DomainError):
    code = "invalid_format"


class InvalidOwner(DomainError):
    code = "invalid_owner"
    field = "owner_username"


class SerialTaken(Conflict):
    code = "serial_taken"
    field = "serial"


class MeterUnauthenticated(DomainError):
    code = "unauthenticated"


@dataclass(frozen=True)
class RegisteredMeter:
    meter: Meter
    # Plaintext, shown once: it is not stored anywhere.
    api_key: str


def hash_api_key(api_key: str) -> str:
    # surrogatepass: any text hashes (and matches nothing) instead of raising.
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def parse_serial(serial: str) -> str:
    text = (serial or "").strip()
    if not SERIAL_PATTERN.fullmatch(text):
        raise InvalidMeter(
            "a serial is 1-64 letters, digits or . _ - and starts with a letter or digit",
            field="serial",
        )
    return text


def parse_public_key(public_key: str) -> str:
    """An ed25519 public key as meters carry it, in its stored form (base58).

    Accepted as base58 (a Solana-style address) or as 64 hex characters (how
    GridTokenX's simulator and bridge registry hold it); both are 32 bytes.
    """
    text = (public_key or "").strip()
    if _HEX_KEY.fullmatch(text):
        return base58.b58encode(bytes.fromhex(text)).decode()
    try:
        raw = base58.b58decode(text)
    except ValueError as exc:
        raise InvalidMeter(
            "the public key is neither base58 nor 64 hex characters", field="public_key"
        ) from exc
    if len(raw) != 32:
        raise InvalidMeter(
            f"the public key decodes to {len(raw)} bytes; an ed25519 key has 32 "
            "(base58, or 64 hex characters)",
            field="public_key",
        )
    return text


def get_meter(session: Session, serial: str) -> Meter:
    if not SERIAL_PATTERN.fullmatch(serial or ""):
        raise NotFound("no meter with that serial", field="serial")
    meter = session.scalar(select(Meter).where(Meter.serial == serial))
    if meter is None:
        raise NotFound(f"no meter with serial {serial!r}", field="serial")
    return meter


def register_meter(
    session: Session,
    serial: str,
    owner_username: str,
    public_key: str,
    *,
    by: str = "system",
    device: dict[str, Any] | None = None,
    reporting: str = Reporting.TICK_ENERGY.value,
    enc_key: str | None = None,
    encryption_required: bool = False,
) -> RegisteredMeter:
    """Store a meter and return its API key, shown this once. Commits.

    `reporting` says what its GridTokenX telemetry registers hold: each tick's own
    energy (`tick_energy`, their simulator) or running counters (`cumulative_registers`).
    `enc_key` is its dlms-enc key already sealed (core.device_keys); with
    `encryption_required` its plaintext frames are refused.
    """
    if encryption_required and not enc_key:
        raise InvalidMeter("encryption_required needs the meter's aes_key", field="aes_key")
    serial, public_key = parse_serial(serial), parse_public_key(public_key)
    if reporting not in {r.value for r in Reporting}:
        raise InvalidMeter("reporting is tick_energy or cumulative_registers", field="reporting")
    attributes = parse_device_attributes(device or {})
    owner = None
    if is_clean_text(owner_username, max_length=64):
        owner = session.scalar(select(User).where(User.username == owner_username.strip()))
    if owner is None:
        raise NotFound(f"no user named {owner_username!r}", field="owner_username")
    if owner.role != Role.PROSUMER or not owner.wallet_address or owner.disabled:
        raise InvalidOwner(
            f"{owner.username!r} is not an enabled prosumer with a wallet; "
            "a meter's readings are minted to its owner's wallet"
        )
    if session.scalar(select(Meter.id).where(Meter.serial == serial)) is not None:
        raise SerialTaken(f"a meter with serial {serial!r} exists")
    api_key = new_api_key()
    meter = Meter(
        serial=serial,
        owner_id=owner.id,
        public_key=public_key,
        api_key_hash=hash_api_key(api_key),
        status=MeterStatus.ACTIVE.value,
        reporting=reporting,
        enc_key=enc_key,
        encryption_required=encryption_required,
    )
    _apply(meter, attributes)
    session.add(meter)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        session.rollback()
        raise SerialTaken(f"a meter with serial {serial!r} exists") from exc
    _changed(session, meter, "registered", by, owner=owner.username)
    session.commit()
    return RegisteredMeter(meter=meter, api_key=api_key)


def set_meter_status(
    session: Session, serial: str, status: MeterStatus | str, *, by: str = "system"
) -> Meter:
    """Suspend or resume a meter; takes effect on its next request. Commits."""
    try:
        wanted = MeterStatus(status)
    except ValueError as exc:
        raise InvalidMeter("status must be active or suspended", field="status") from exc
    meter = get_meter(session, serial)
    if meter.status != wanted:
        meter.status = wanted.value
        change = "suspended" if wanted is MeterStatus.SUSPENDED else "resumed"
        _changed(session, meter, change, by)
    session.commit()
    return meter


def suspend_meter(session: Session, serial: str, *, by: str = "system") -> Meter:
    return set_meter_status(session, serial, MeterStatus.SUSPENDED, by=by)


def resume_meter(session: Session, serial: str, *, by: str = "system") -> Meter:
    return set_meter_status(session, serial, MeterStatus.ACTIVE, by=by)


def update_device_attributes(
    session: Session, serial: str, values: dict[str, Any], *, by: str = "system"
) -> Meter:
    """Set (or, given a blank, clear) registry fields; audited with old and new. Commits."""
    attributes = parse_device_attributes(values)
    meter = get_meter(session, serial)
    changes = {
        name: {"old": shown(getattr(meter, name)), "new": shown(value)}
        for name, value in attributes.items()
        if shown(getattr(meter, name)) != shown(value)
    }
    if changes:
        _apply(meter, attributes)
        _changed(session, meter, "device_updated", by, changes=changes)
    session.commit()
    return meter


def _apply(meter: Meter, attributes: dict[str, Any]) -> None:
    for name, value in attributes.items():
        setattr(meter, name, value.value if name == "technology" and value else value)


def rotate_meter_key(session: Session, serial: str, *, by: str = "system") -> RegisteredMeter:
    """Replace a meter's API key; the old key stops working at once. Commits."""
    meter = get_meter(session, serial)
    api_key = new_api_key()
    meter.api_key_hash = hash_api_key(api_key)
    _changed(session, meter, "key_rotated", by)
    session.commit()
    return RegisteredMeter(meter=meter, api_key=api_key)


def authenticate_meter(session: Session, api_key: str) -> Meter:
    """The meter holding `api_key`, whatever its status; MeterUnauthenticated otherwise."""
    if not api_key:
        raise MeterUnauthenticated("a meter API key is required (Authorization or X-API-Key)")
    meter = session.scalar(select(Meter).where(Meter.api_key_hash == hash_api_key(api_key)))
    if meter is None:
        raise MeterUnauthenticated("unknown meter API key")
    return meter


def _changed(session: Session, meter: Meter, change: str, by: str, **extra: Any) -> None:
    # The owner sees changes to their own meter.
    publish(
        session,
        EventType.METER_CHANGED,
        {"meter_serial": meter.serial, "change": change, "by": by, **extra},
        user_id=meter.owner_id,
    )
