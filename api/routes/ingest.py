"""Meter ingest: signed readings, one at a time or in batches. Thin over core.readings.

Each request is one unit of work run in one worker thread: verify the key, spend
the meter's reading budget (one token per reading), accept, commit. The body was
read before (async, size-capped), so no database transaction waits on a slow client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import examples as ex
from api.body import JsonBody
from api.deps import BatchBody, MeterKey, ReadingBody, StateDep
from api.openapi import error_responses, json_request_body
from api.schemas import BatchIn, BatchOut, ReadingIn, ReadingOut
from api.serialize import item_out, reading_out
from api.state import ApiState
from core.meters import MeterUnauthenticated
from core.ratelimit import RateLimited
from core.readings import (
    MAX_BATCH_ITEMS,
    InvalidFormat,
    PayloadTooLarge,
    ReadingRejected,
    SubmittingMeter,
    accept_batch,
    accept_reading,
    claim_meter,
    record_rejection,
)

T = TypeVar("T")

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


def _authenticated(
    session: Session, state: ApiState, api_key: str, now: datetime, readings: int
) -> SubmittingMeter:
    """The meter behind the key (its contact time recorded), its budget spent for `readings`.

    Unknown keys and rate-limited requests write no event: anyone can send them,
    so they must not be able to flood the event log (they are counted in /metrics).
    """
    try:
        meter = claim_meter(session, api_key, now)
        state.meter_budget.spend(meter.id, readings)
    except (MeterUnauthenticated, RateLimited, PayloadTooLarge) as error:
        state.metrics.reject(error.code)
        raise
    return meter


async def _unit_of_work(
    state: ApiState,
    api_key: str,
    work: Callable[[Session, SubmittingMeter, datetime], T],
    readings: int = 1,
) -> T:
    def run() -> T:
        now = state.now()
        with state.core.sessions() as session:
            meter = _authenticated(session, state, api_key, now, readings)
            try:
                return work(session, meter, now)
            except ReadingRejected as error:
                state.metrics.reject(error.code)
                raise

    # At most as many at once as the pool holds connections: more would only queue
    # inside the pool, or open and close overflow connections on every request.
    return await anyio.to_thread.run_sync(run, limiter=state.db_limiter)


def _batch_items(body: JsonBody) -> list | None:
    readings = body.value.get("readings") if isinstance(body.value, dict) else None
    return readings if isinstance(readings, list) else None


def _readings_carried(items: list | None) -> int:
    """What a batch spends: one token per item; an oversized batch is refused (413) by
    acceptance and spends one, like any request that stores nothing."""
    return len(items) if items is not None and len(items) <= MAX_BATCH_ITEMS else 1


def _refuse_body(session: Session, meter: SubmittingMeter, body: JsonBody, now: datetime) -> None:
    if body.error is not None:
        record_rejection(session, meter, body.error, now=now)
        raise body.error


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
async def submit_reading(api_key: MeterKey, body: ReadingBody, state: StateDep) -> JSONResponse:
    def work(session: Session, meter: SubmittingMeter, now: datetime) -> JSONResponse:
        _refuse_body(session, meter, body, now)
        acceptance = accept_reading(session, meter, body.value, state.config(), now=now)
        (state.metrics.accepted if acceptance.created else state.metrics.duplicates).inc()
        return JSONResponse(reading_out(acceptance.reading), 201 if acceptance.created else 200)

    return await _unit_of_work(state, api_key, work)


@router.post(
    "/api/meters/submit-batch",
    response_model=BatchOut,
    summary="Submit up to 1000 signed readings",
    description=(
        "Every valid reading is stored, in one transaction; each item is reported as "
        "accepted, duplicate (already stored: `id` names it; a different reading in the "
        "duplicate window also carries error duplicate_reading) or rejected (with its "
        "error). A batch spends one token of the meter's reading budget per item "
        "(METER_RATE_LIMIT_PER_MINUTE, burst METER_RATE_LIMIT_BURST): a batch bigger "
        "than what remains is refused whole (429) and nothing is stored. Body limit 1 MiB."
    ),
    responses=error_responses(*_BATCH_ERRORS),
    openapi_extra=json_request_body(BatchIn, {"readings": [ex.READING_IN]}),
)
async def submit_batch(api_key: MeterKey, body: BatchBody, state: StateDep) -> JSONResponse:
    readings = _batch_items(body)

    def work(session: Session, meter: SubmittingMeter, now: datetime) -> JSONResponse:
        _refuse_body(session, meter, body, now)
        if readings is None:
            error = InvalidFormat('the body is {"readings": [ ... ]}', field="readings")
            record_rejection(session, meter, error, now=now)
            raise error
        outcome = accept_batch(session, meter, readings, state.config(), now=now)
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

    return await _unit_of_work(state, api_key, work, _readings_carried(readings))
