"""GridTokenX's aggregator-bridge ingest body, parsed into our checked submission.

Their smart-meter simulator (gridtokenx-smartmeter-simulator, transport
`aggregator_bridge.py`) POSTs to `/v1/private-network/ingest`:

    {"protocol": "dlms", "device_id": "<serial>",
     "payload": {"1.1.1.8.0.255": <import Wh>, "1.1.2.8.0.255": <export Wh>,
                 "kwh": <net kWh>, "energy_generated": .., "energy_consumed": ..,
                 "timestamp": "<RFC 3339>", "signature": "<base58>", "zone_code": "..",
                 ...more OBIS registers (voltage, current, frequency, power factor)}}

The signature is ed25519 over `{device_id}:{kwh}:{timestamp_ms}`, kwh written as
Rust's `f64::to_string()` (`1`, not `1.0`) and timestamp_ms the timestamp in
milliseconds (their meters send whole seconds). Their bridge (handlers.rs
`rest_sign_candidates`) also accepts the timestamp in seconds and the payload
without `signature` as serde_json writes it; so do we.

`parse_gridtokenx_ingest(raw)` is the one public parser: every door that carries
this body (HTTP here, MQTT `/meter/{device_id}/reading`) calls it and then the
same acceptance function as our own submit-reading. No web framework here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from core.meters import SERIAL_PATTERN
from core.readings.errors import InvalidFormat, TooManyDecimals
from core.readings.rules import FieldNames, SampleFields, Submission, parse_timestamp
from core.readings.rust_format import json_f64, rust_f64_display, serde_json_bytes
from core.signatures import parse_signature, unix_ms
from core.text import text_problem
from core.units import InvalidAmount, JsonNumber, parse_decimal_text
from core.units import TooManyDecimals as UnitsTooManyDecimals

PROTOCOL_PLAIN = "dlms"
PROTOCOL_ENCRYPTED = "dlms-enc"
OBIS_IMPORT_WH = "1.1.1.8.0.255"  # active energy import (consumed), Wh
OBIS_EXPORT_WH = "1.1.2.8.0.255"  # active energy export (generated), Wh
_MAX_TEXT = 128
_OBIS = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
FIELDS = FieldNames(
    serial="device_id",
    amount="payload.kwh",
    timestamp="payload.timestamp",
    signature="payload.signature",
)


@dataclass(frozen=True, slots=True)
class GridTokenXFrame:
    """The envelope: which protocol, which device, and its payload (still untrusted)."""

    protocol: str  # "dlms" or "dlms-enc"
    device_id: str
    payload: Mapping[str, Any]


def parse_gridtokenx_frame(raw: Any) -> GridTokenXFrame:
    """The envelope's fields, or the first format error naming its field."""
    if not isinstance(raw, Mapping):
        raise InvalidFormat("the body is a JSON object {protocol, device_id, payload}")
    protocol = raw.get("protocol")
    if not isinstance(protocol, str):
        raise InvalidFormat("protocol is required: dlms or dlms-enc", field="protocol")
    # Their bridge reads "" and "auto" as dlms, and is case-blind.
    protocol = protocol.strip().lower() or PROTOCOL_PLAIN
    protocol = PROTOCOL_PLAIN if protocol == "auto" else protocol
    if protocol not in (PROTOCOL_PLAIN, PROTOCOL_ENCRYPTED):
        raise InvalidFormat(
            f"unsupported protocol {protocol[:32]!r}: dlms or dlms-enc", field="protocol"
        )
    device_id = _text(raw, "device_id", "device_id")
    if not SERIAL_PATTERN.fullmatch(device_id):
        raise InvalidFormat(
            "device_id is the meter's serial: 1-64 of A-Z a-z 0-9 . _ - ", field="device_id"
        )
    payload = raw.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidFormat("payload is required and is a JSON object", field="payload")
    return GridTokenXFrame(protocol, device_id, payload)


def parse_gridtokenx_payload(
    device_id: str, payload: Mapping[str, Any], *, counter: int | None = None
) -> Submission:
    """A plaintext DLMS payload of `device_id` as the checked submission's input."""
    field = FIELDS.timestamp
    timestamp = parse_timestamp(_text(payload, "timestamp", field), field)
    signature_text = _text(payload, "signature", "payload.signature")
    signature = parse_signature(signature_text)
    if signature is None:
        raise InvalidFormat(
            "payload.signature must be base58 of a 64-byte ed25519 signature",
            field="payload.signature",
        )
    raw_kwh = payload.get("kwh")
    net = _signed_kwh(raw_kwh, "payload.kwh")
    signed_value = json_f64(raw_kwh)
    if signed_value is None:
        raise InvalidFormat("payload.kwh must be a number", field="payload.kwh")
    return Submission(
        meter_serial=device_id,
        kwh=net,
        reading_timestamp=timestamp,
        signature=signature,
        signed_messages=signed_messages(device_id, signed_value, unix_ms(timestamp), payload),
        fields=FIELDS,
        sample=sample_fields(payload, counter=counter),
    )


def sample_fields(payload: Mapping[str, Any], *, counter: int | None = None) -> SampleFields:
    """Generation, consumption and the registers, exactly, as the payload reports them.

    Their simulator's import/export OBIS values are the tick's own Wh, not running
    counters; what they mean for a meter is its registration's `reporting`
    (core.settlement reads them). Generation and consumption come from
    energy_generated / energy_consumed, else from export / import Wh.
    """
    import_micro = _micro(payload.get(OBIS_IMPORT_WH), f"payload.{OBIS_IMPORT_WH}", 3)
    export_micro = _micro(payload.get(OBIS_EXPORT_WH), f"payload.{OBIS_EXPORT_WH}", 3)
    generated = _micro(payload.get("energy_generated"), "payload.energy_generated", 6)
    consumed = _micro(payload.get("energy_consumed"), "payload.energy_consumed", 6)
    registers = {key: _register_text(value) for key, value in payload.items() if _is_register(key)}
    return SampleFields(
        generated_micro=generated if generated is not None else export_micro,
        consumed_micro=consumed if consumed is not None else import_micro,
        import_micro=import_micro,
        export_micro=export_micro,
        registers=registers or None,
        counter=counter,
    )


def _exact(value: Any, field: str, decimals: int) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidFormat(f"{field} must be a number", field=field)
    text = value.literal if isinstance(value, JsonNumber) else str(value)
    try:
        amount = parse_decimal_text(text, max_decimals=decimals)
    except UnitsTooManyDecimals as exc:
        raise TooManyDecimals(
            f"{field} {text} has more than {decimals} decimals; never rounded", field=field
        ) from exc
    except InvalidAmount as exc:
        raise InvalidFormat(f"{field}: {exc}", field=field) from exc
    if amount.adjusted() > 12:
        raise InvalidFormat(f"{field} {text} is out of range", field=field)
    return amount


# A JSON number written plainly, non-negative, within _exact's range (at most 13 whole
# digits) and decimals: its micro-kWh need no more checks. Anything else takes _exact's
# way (and its refusals); both give the same integer.
_PLAIN = {
    decimals: re.compile(rf"[0-9]{{1,13}}(?:\.[0-9]{{1,{decimals}}})?") for decimals in (3, 6)
}


def _micro(value: Any, field: str, decimals: int) -> int | None:
    """Micro-kWh of a value with at most `decimals` decimals: Wh (3: Wh × 1000 is a whole
    number of micro-kWh) or kWh (6). Four registers of every frame come through here."""
    if type(value) is JsonNumber and _PLAIN[decimals].fullmatch(value.literal) is not None:
        return int(value.scaleb(decimals))
    amount = _exact(value, field, decimals)
    return None if amount is None else int(amount * 10**decimals)


@lru_cache(maxsize=512)
def _register_key(key: str) -> bool:
    return (_OBIS.fullmatch(key) is not None and key not in (OBIS_IMPORT_WH, OBIS_EXPORT_WH)) or (
        key == "zone_code"
    )


def _is_register(key: str) -> bool:
    """Whether a payload key is kept among the registers (their simulator sends the same
    dozen keys in every frame: cached; no OBIS code is longer than 23 characters)."""
    return len(key) <= 23 and _register_key(key)


def _register_text(value: Any) -> str:
    text = value.literal if isinstance(value, JsonNumber) else str(value)
    return text[:_MAX_TEXT]


def parse_gridtokenx_ingest(raw: Any) -> Submission:
    """A plaintext GridTokenX ingest body (protocol dlms) as the checked submission's input.

    An encrypted body (dlms-enc) needs its meter's key first: parse the frame with
    `parse_gridtokenx_frame`, decrypt, then `parse_gridtokenx_payload`.
    """
    frame = parse_gridtokenx_frame(raw)
    if frame.protocol != PROTOCOL_PLAIN:
        raise InvalidFormat("an encrypted frame is opened with its meter's key", field="protocol")
    return parse_gridtokenx_payload(frame.device_id, frame.payload)


class _Candidates(Sequence[bytes]):
    """The messages in their bridge's order, the JSON form written only when asked for:
    nearly every frame verifies over the first, and writing the JSON took more than half
    of a frame's parsing CPU."""

    def __init__(self, first: tuple[bytes, ...], payload: Mapping[str, Any]) -> None:
        self._messages = list(first)
        self._payload: Mapping[str, Any] | None = payload

    def _complete(self) -> None:
        if self._payload is not None:
            payload, self._payload = self._payload, None
            # A payload serde_json could not write (a lone surrogate) has no JSON form.
            with contextlib.suppress(TypeError, UnicodeEncodeError):
                self._messages.append(
                    serde_json_bytes({k: v for k, v in payload.items() if k != "signature"})
                )

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice) or index < 0 or index >= len(self._messages):
            self._complete()
        return self._messages[index]

    def __len__(self) -> int:
        self._complete()
        return len(self._messages)

    def __bool__(self) -> bool:
        return True


def signed_messages(
    device_id: str, kwh: float, timestamp_ms: int, payload: Mapping[str, Any]
) -> Sequence[bytes]:
    """What their bridge accepts a signature over, in its order: ms, seconds, the JSON."""
    value = rust_f64_display(kwh)
    seconds = int(timestamp_ms / 1000) if timestamp_ms < 0 else timestamp_ms // 1000
    candidates = (
        f"{device_id}:{value}:{timestamp_ms}".encode(),
        f"{device_id}:{value}:{seconds}".encode(),
    )
    return _Candidates(candidates, payload)


def _signed_kwh(value: Any, field: str) -> Decimal:
    """An exact kWh that may be negative (net energy), at most 6 decimals."""
    if value is None:
        raise InvalidFormat(f"{field} (the signed net kWh) is required", field=field)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidFormat(f"{field} must be a JSON number or a decimal string", field=field)
    text = value.literal if isinstance(value, JsonNumber) else str(value)
    try:
        return parse_decimal_text(text, signed=True)
    except UnitsTooManyDecimals as exc:
        raise TooManyDecimals(
            f"{field} {text} has more than 6 decimals; amounts are never rounded", field=field
        ) from exc
    except InvalidAmount as exc:
        raise InvalidFormat(f"{field}: {exc}", field=field) from exc


def _text(raw: Mapping[str, Any], key: str, field: str) -> str:
    value = raw.get(key)
    if value is None:
        raise InvalidFormat(f"{field} is required", field=field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidFormat(f"{field} must be a non-empty string", field=field)
    problem = text_problem(value, max_length=_MAX_TEXT)
    if problem:
        raise InvalidFormat(f"{field} {problem}", field=field)
    return value.strip()


__all__ = [
    "OBIS_EXPORT_WH",
    "OBIS_IMPORT_WH",
    "PROTOCOL_ENCRYPTED",
    "PROTOCOL_PLAIN",
    "GridTokenXFrame",
    "parse_gridtokenx_frame",
    "parse_gridtokenx_ingest",
    "parse_gridtokenx_payload",
    "signed_messages",
]
