"""Provisioning a meter's dlms-enc key: sealed with DATA_DIR's wrapping key, never shown.

The key arrives once (at registration, or replaced later) as 64 hex characters,
their registry's form; the database keeps only the sealed form
(core.readings.encryption), the event says that it changed, never what it is.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.events import EventType, publish
from core.meters import get_meter, parse_serial
from core.readings.encryption import parse_device_key, seal_device_key


def sealed_device_key(wrap_key: bytes, serial: str, aes_key: str) -> str:
    """The stored form of `aes_key` for meter `serial` (InvalidDeviceKey if not 64 hex)."""
    return seal_device_key(wrap_key, parse_serial(serial), parse_device_key(aes_key))


def set_device_key(
    session: Session,
    serial: str,
    aes_key: str | None,
    wrap_key: bytes,
    *,
    required: bool,
    by: str = "system",
) -> None:
    """Give a meter a new dlms-enc key (None: remove it) and say whether it must use it.
    Commits."""
    meter = get_meter(session, serial)
    meter.enc_key = sealed_device_key(wrap_key, meter.serial, aes_key) if aes_key else None
    meter.encryption_required = required and meter.enc_key is not None
    publish(
        session,
        EventType.METER_CHANGED,
        {
            "meter_serial": meter.serial,
            "change": "encryption_key_set" if aes_key else "encryption_key_removed",
            "by": by,
            "encryption_required": meter.encryption_required,
        },
        user_id=meter.owner_id,
    )
    session.commit()
