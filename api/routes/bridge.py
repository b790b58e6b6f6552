"""GridTokenX's aggregator-bridge ingest, `POST /v1/private-network/ingest`, beside ours.

Their meters (and head-ends) send it unmodified: `X-API-KEY` (a meter's own key or
a gateway's), body `{"protocol", "device_id", "payload"}`. The body is parsed by
core.readings.gridtokenx into the same checked submission our submit-reading
builds, and accepted by the same core function. Status codes are theirs where
their bridge defines one (202 accepted, 403 bad signature) and ours elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import MeterKey, ReadingBody, StateDep
from api.errors import error_body
from api.openapi import error_responses
from api.routes.ingest import body_field, refuse_body, unit_of_work
from core.readings import InvalidSignature, SubmittingMeter, accept_reading
from core.readings.gridtokenx import parse_gridtokenx_ingest

router = APIRouter(tags=["meters"])


def _their_errors() -> dict[int | str, dict[str, Any]]:
    responses = error_responses(
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
THEIR_STATUS = {InvalidSignature.code: 403}


@router.post(
    "/v1/private-network/ingest",
    status_code=202,
    summary="GridTokenX aggregator-bridge ingest (their DLMS form, their status codes)",
    description=(
        "The body GridTokenX's smart-meter simulator sends: "
        '`{"protocol": "dlms", "device_id": <serial>, "payload": {OBIS registers, kwh, '
        "energy_generated, energy_consumed, timestamp, signature, zone_code}}`, the "
        "signature ed25519 (base58) over `{device_id}:{kwh}:{timestamp_ms}` (kwh as Rust's "
        "f64 Display). 202 accepted; the identical sample again 200. A bad signature is "
        "403 (theirs); other refusals are ours (CONTRACT codes). See docs/API.md."
    ),
    responses={200: {"description": "The identical sample was already stored"}, **_ERRORS},
)
async def ingest_private_network(
    api_key: MeterKey, body: ReadingBody, state: StateDep
) -> JSONResponse:
    def work(session: Session, meter: SubmittingMeter, now: datetime) -> JSONResponse:
        refuse_body(session, meter, body, now)
        acceptance = accept_reading(
            session, meter, body.value, state.config(), now=now, parse=parse_gridtokenx_ingest
        )
        (state.metrics.accepted if acceptance.created else state.metrics.duplicates).inc()
        reading = acceptance.reading
        return JSONResponse(
            {
                "status": "accepted" if acceptance.created else "duplicate",
                "reading_id": reading.id,
                "device_id": reading.meter_serial,
                "reading_status": reading.status,
            },
            202 if acceptance.created else 200,
        )

    try:
        return await unit_of_work(
            state, api_key, work, serial_of=lambda: body_field(body, "device_id")
        )
    except InvalidSignature as error:
        return JSONResponse(
            error_body(error.code, error.message, error.field), THEIR_STATUS[error.code]
        )
