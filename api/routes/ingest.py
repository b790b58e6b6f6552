"""Meter ingest: signed readings, one at a time or in batches. Thin over core.readings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import examples as ex
from api.deps import BatchBody, MeterKey, ReadingBody, SessionDep, StateDep
from api.openapi import error_responses, json_request_body
from api.schemas import BatchIn, BatchOut, ReadingIn, ReadingOut
from api.serialize import item_out, reading_out
from core.readings import (
    InvalidFormat,
    ReadingRejected,
    accept_batch,
    accept_reading,
    record_rejection,
)

router = APIRouter(tags=["meters"])

_READING_ERRORS = (
    "unauthenticated",
    "invalid_signature",
    "meter_suspended",
    "forbidden",
    "unknown_meter",
    "duplicate_reading",
    "payload_too_large",
    "kwh_out_of_range",
    "too_many_decimals",
    "timestamp_in_future",
    "reading_too_old",
    "invalid_format",
    "rate_limited",
)
_BATCH_ERRORS = (
    "unauthenticated",
    "meter_suspended",
    "payload_too_large",
    "invalid_format",
    "rate_limited",
)


@router.post(
    "/api/meters/submit-reading",
    status_code=201,
    response_model=ReadingOut,
    summary="Submit one signed reading",
    description=(
        "201 with the stored reading; the identical reading (same meter, timestamp, "
        "kWh and signature) again answers 200 with the same reading, so meters may retry. "
        "Body limit 16 KiB."
    ),
    responses={
        200: {"model": ReadingOut, "description": "The identical reading was already stored"},
        **error_responses(*_READING_ERRORS),
    },
    openapi_extra=json_request_body(ReadingIn, ex.READING_IN),
)
def submit_reading(
    meter: MeterKey, body: ReadingBody, session: SessionDep, state: StateDep
) -> JSONResponse:
    now = state.now()
    try:
        if body.error is not None:
            record_rejection(session, meter, body.error, now=now)
            raise body.error
        acceptance = accept_reading(session, meter, body.value, state.config(), now=now)
    except ReadingRejected as error:
        state.metrics.reject(error.code)
        raise
    (state.metrics.accepted if acceptance.created else state.metrics.duplicates).inc()
    return JSONResponse(reading_out(acceptance.reading), 201 if acceptance.created else 200)


@router.post(
    "/api/meters/submit-batch",
    response_model=BatchOut,
    summary="Submit up to 1000 signed readings",
    description=(
        "Every valid reading is stored, in one transaction; each item is reported as "
        "accepted, duplicate (already stored: `id` names it; a different reading in the "
        "duplicate window also carries error duplicate_reading) or rejected (with its "
        "error). A batch counts once against the rate limit. Body limit 1 MiB."
    ),
    responses=error_responses(*_BATCH_ERRORS),
    openapi_extra=json_request_body(BatchIn, {"readings": [ex.READING_IN]}),
)
def submit_batch(
    meter: MeterKey, body: BatchBody, session: SessionDep, state: StateDep
) -> JSONResponse:
    now = state.now()
    try:
        error = body.error
        readings = body.value.get("readings") if isinstance(body.value, dict) else None
        if error is None and not isinstance(readings, list):
            error = InvalidFormat('the body is {"readings": [ ... ]}', field="readings")
        if error is not None:
            record_rejection(session, meter, error, now=now)
            raise error
        assert isinstance(readings, list)
        outcome = accept_batch(session, meter, readings, state.config(), now=now)
    except ReadingRejected as refused:
        state.metrics.reject(refused.code)
        raise
    accepted, duplicates = outcome.count("accepted"), outcome.count("duplicate")
    state.metrics.accepted.inc(accepted)
    for result in outcome.results:
        if result.error is not None:
            state.metrics.reject(result.error.code)
        elif result.status == "duplicate":
            state.metrics.duplicates.inc()
    return JSONResponse(
        {
            "accepted": accepted,
            "rejected": outcome.count("rejected"),
            "duplicates": duplicates,
            "results": [item_out(result) for result in outcome.results],
        }
    )
