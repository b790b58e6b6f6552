"""GridTokenX's aggregator-bridge ingest, `POST /v1/private-network/ingest`, beside ours.

Their meters (and head-ends) send it unmodified: `X-API-KEY` (a meter's own key or
a gateway's), body `{"protocol", "device_id", "payload"}`. The body is parsed by
core.readings.gridtokenx into the same checked submission our submit-reading
builds, and accepted by the same core function, with the readings arriving together
through any door (api/group_ingest.py: one commit per group). Status codes are theirs where
their bridge defines one (202 accepted, 403 bad signature) and ours elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import MeterKey, ReadingBody, StateDep
from api.errors import error_body
from api.group_ingest import Door, Parser, ReadingRequest
from api.openapi import error_responses
from api.routes.ingest import accept_individually
from api.serialize import rfc3339
from api.state import ApiState
from core.readings import (
    Acceptance,
    InvalidSignature,
    ReadingRejected,
    ReplayedCounter,
    SubmittingMeter,
)
from core.readings.encryption import (
    DecryptFailed,
    EncryptionRequired,
    device_cipher,
    open_frame,
)
from core.readings.gridtokenx import (
    PROTOCOL_PLAIN,
    parse_gridtokenx_frame,
    parse_gridtokenx_payload,
)
from core.readings.rules import Submission

router = APIRouter(tags=["meters"])


def _their_errors() -> dict[int | str, dict[str, Any]]:
    responses = error_responses(
        "decrypt_failed",
        "encryption_required",
        "replayed_counter",
        "unauthenticated",
        "forbidden",
        "meter_suspended",
        "unknown_meter",
        "duplicate_reading",
        "payload_too_large",
        "invalid_format",
        "rate_limited",
    )
    examples = responses[403]["content"]["application/json"]["examples"]
    examples["invalid_signature"] = {
        "value": error_body(
            "invalid_signature",
            "payload.signature does not verify against this meter's public key",
            "payload.signature",
        )
    }
    return responses


_ERRORS = _their_errors()

# Where GridTokenX's bridge answers differently from our contract for the same refusal.
THEIR_STATUS = {
    InvalidSignature.code: 403,
    DecryptFailed.code: 400,
    ReplayedCounter.code: 409,
    EncryptionRequired.code: 426,
}


def sample_out(meter: SubmittingMeter, acceptance: Acceptance) -> JSONResponse:
    sample = acceptance.sample
    assert sample is not None
    body: dict[str, Any] = {
        "status": "accepted" if acceptance.created else "duplicate",
        "sample_id": sample.id,
        "device_id": meter.serial,
        "timestamp": rfc3339(sample.sample_timestamp),
    }
    if sample.settled is not None:
        body.update(
            interval_start=rfc3339(sample.settled.interval_start),
            interval_end=rfc3339(sample.settled.interval_end),
            interval_status=sample.settled.status,
            late=sample.settled.late,
            readings=list(sample.settled.readings),
        )
    return JSONResponse(body, 202 if acceptance.created else 200)


@router.post(
    "/v1/private-network/ingest",
    status_code=202,
    summary="GridTokenX aggregator-bridge ingest (their DLMS form, their status codes)",
    description=(
        "The body GridTokenX's smart-meter simulator sends: "
        '`{"protocol": "dlms", "device_id": <serial>, "payload": {OBIS registers, kwh, '
        "energy_generated, energy_consumed, timestamp, signature, zone_code}}`, the "
        "signature ed25519 (base58) over `{device_id}:{kwh}:{timestamp_ms}` (kwh as Rust's "
        "f64 Display). Every sample is stored and settles into its meter's interval "
        "(docs/API.md). 202 accepted; the identical sample again 200. A bad signature is "
        "403 (theirs); other refusals are ours (CONTRACT codes). See docs/API.md."
    ),
    responses={200: {"description": "The identical sample was already stored"}, **_ERRORS},
)
async def ingest_private_network(
    api_key: MeterKey, body: ReadingBody, state: StateDep
) -> JSONResponse:
    try:
        return await accept_individually(state, ReadingRequest(api_key, body, GRIDTOKENX))
    except (InvalidSignature, DecryptFailed, EncryptionRequired, ReplayedCounter) as error:
        return JSONResponse(
            error_body(error.code, error.message, error.field), THEIR_STATUS[error.code]
        )


def _parsers(
    state: ApiState, _session: Session, frames: Sequence[tuple[SubmittingMeter, Any]]
) -> list[Parser | ReadingRejected]:
    """Each frame's parser: plaintext as it is, encrypted opened with its meter's key.

    Their order: authenticate the ciphertext (GCM) first, then the counter (when
    stored) and the signature inside, so a forged frame never moves the counter.
    A meter's encryption settings came with its identity (core.readings.identity).
    """
    # Read once per group, not per frame: it is a file under DATA_DIR.
    wrap = state.core.device_key_wrap() if any(m.sealed_key for m, _ in frames) else b""
    parsers: list[Parser | ReadingRejected] = []
    for meter, raw in frames:
        try:
            parsers.append(_parser_for(wrap, meter, raw))
        except ReadingRejected as error:
            parsers.append(error)
    return parsers


def _parser_for(wrap: bytes, meter: SubmittingMeter, raw: Any) -> Parser:
    frame = parse_gridtokenx_frame(raw)
    if frame.protocol == PROTOCOL_PLAIN:
        if meter.encryption_required:
            raise EncryptionRequired(
                f"meter {meter.serial!r} sends encrypted frames only (protocol dlms-enc)"
            )
        payload, counter = frame.payload, None
    elif meter.sealed_key is None:
        raise DecryptFailed(f"no AES key is provisioned for meter {meter.serial!r}")
    else:
        cipher = device_cipher(wrap, meter.serial, meter.sealed_key)
        opened = open_frame(frame.device_id, frame.payload, cipher)
        payload, counter = opened.payload, opened.counter

    # The frame is parsed once, here: the parser only reads its payload.
    def parse(_raw: Any) -> Submission:
        return parse_gridtokenx_payload(frame.device_id, payload, counter=counter)

    return parse


GRIDTOKENX = Door("device_id", _parsers, sample_out)
