"""What a message says (decoding) and what the bridge answers (acks). Pure: no broker, no DB.

A message on our topic is one reading (the JSON object of POST
/api/meters/submit-reading) or a batch (`{"readings": [...]}`, up to 1000, as
submit-batch). A message on GridTokenX's topic is one sample in their form: the body
of POST /v1/private-network/ingest, or its `payload` object alone (the device is the
topic's). What cannot be read is
refused whole with the HTTP API's codes: `payload_too_large` above MAX_MESSAGE_BYTES,
`invalid_format` for anything that is not such JSON, and `retained_message` for a
message the broker flags as retained (a retained reading would be replayed to every
new subscriber; it is never a reading).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import DomainError
from core.readings import BatchOutcome, InvalidFormat, ItemResult, PayloadTooLarge, ReadingRejected
from core.readings.gridtokenx import PROTOCOL_PLAIN
from core.readings.json_text import parse_json
from core.text import printable
from mqtt_ingest.topics import Form

# The HTTP API's batch body limit: a full batch of 1000 readings fits.
MAX_MESSAGE_BYTES = 1024 * 1024


class RetainedMessage(ReadingRejected):
    code = "retained_message"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A message's readings, or why it is refused whole."""

    items: list[Any] = field(default_factory=list)
    batch: bool = False
    refusal: ReadingRejected | None = None
    reading_timestamp: str | None = None  # echoed in a single reading's ack

    def refused(self, error: ReadingRejected) -> Decoded:
        return Decoded(self.items, self.batch, error, self.reading_timestamp)


def decode(
    payload: bytes,
    *,
    retained: bool,
    form: Form = Form.OURS,
    serial: str = "",
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Decoded:
    if retained:
        return Decoded(refusal=RetainedMessage("retained messages are not readings; ignored"))
    if len(payload) > max_bytes:
        return Decoded(refusal=PayloadTooLarge(f"the message exceeds {max_bytes} bytes"))
    try:
        document = parse_json(payload)
    except InvalidFormat as error:
        return Decoded(refusal=error)
    if form is Form.GRIDTOKENX:
        return _gridtokenx(document, serial)
    if isinstance(document, Mapping) and "readings" in document:
        readings = document["readings"]
        if not isinstance(readings, list):
            error = InvalidFormat('a batch is {"readings": [ ... ]}', field="readings")
            return Decoded(batch=True, refusal=error)
        return Decoded(readings, batch=True)
    if not isinstance(document, Mapping):
        return Decoded(refusal=InvalidFormat("a message is a reading object or a batch"))
    stamp = document.get("reading_timestamp")
    return Decoded([document], reading_timestamp=stamp if isinstance(stamp, str) else None)


def _gridtokenx(document: Any, serial: str) -> Decoded:
    if not isinstance(document, Mapping):
        return Decoded(refusal=InvalidFormat("a message is their ingest body or its payload"))
    if "payload" not in document:
        document = {"protocol": PROTOCOL_PLAIN, "device_id": serial, "payload": document}
    sample = document.get("payload")
    stamp = sample.get("timestamp") if isinstance(sample, Mapping) else None
    return Decoded([document], reading_timestamp=stamp if isinstance(stamp, str) else None)


def _error_fields(error: DomainError) -> dict[str, Any]:
    fields: dict[str, Any] = {"code": error.code, "message": printable(error.message)}
    if error.field:
        fields["field"] = error.field
    fields.update(getattr(error, "details", None) or {})
    return fields


def _item(result: ItemResult) -> dict[str, Any]:
    item: dict[str, Any] = {"index": result.index, "status": result.status}
    if result.id is not None:
        item["id"] = result.id
    if result.error is not None:
        item["error"] = _error_fields(result.error)
    return item


def ack_for(decoded: Decoded, answer: BatchOutcome | DomainError) -> dict[str, Any]:
    """The ack of one message. A single reading: accepted / duplicate (with the stored id) /
    rejected (with the code); a batch: the counts and one result per item, as submit-batch."""
    if isinstance(answer, DomainError):
        ack = {"status": "rejected", **_error_fields(answer)}
    elif decoded.batch:
        ack = {
            "status": "batch",
            "accepted": answer.count("accepted"),
            "duplicates": answer.count("duplicate"),
            "rejected": answer.count("rejected"),
            "results": [_item(result) for result in answer.results],
        }
    else:
        [result] = answer.results
        if result.error is not None:  # rejected, or a different reading in the window
            ack = {"status": "rejected", **_error_fields(result.error)}
        else:
            ack = {"status": result.status, "id": result.id}
    if decoded.reading_timestamp is not None:
        ack["reading_timestamp"] = decoded.reading_timestamp
    return ack


def outcomes_of(answer: BatchOutcome | DomainError, decoded: Decoded) -> list[str]:
    """The outcome counted per reading: accepted, duplicate or rejected:<code>."""
    if isinstance(answer, DomainError):
        return [f"rejected:{answer.code}"]
    counted = []
    for result in answer.results:
        if result.error is not None:
            counted.append(f"rejected:{result.error.code}")
        else:
            counted.append(result.status)
    return counted


def encode(ack: Mapping[str, Any]) -> bytes:
    return json.dumps(ack, separators=(",", ":"), default=str).encode()
