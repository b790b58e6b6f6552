"""Meter ingest: signed readings, one at a time or in batches. Thin over core.readings.

A reading sent alone, through any door, is accepted with the requests arriving
together (api/group_ingest.py). A batch is one unit of work run in one worker thread:
verify the key (a meter's own, or a gateway's that names the meter per reading),
spend the meter's reading budget (one token per reading), accept, commit. The body
was read before (async, size-capped), so no database transaction waits on a slow
client.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api import examples as ex
from api.body import JsonBody
from api.deps import BatchBody, MeterKey, ReadingBody, StateDep
from api.group_ingest import ReadingRequest
from api.openapi import error_responses, json_request_body
from api.schemas import BatchIn, BatchOut, ReadingIn, ReadingOut
from api.serialize import item_out
from api.state import ApiState
from core.errors import DomainError
from core.meters import SERIAL_PATTERN, MeterUnauthenticated
from core.ratelimit import RateLimited
from core.readings import (
    MAX_BATCH_ITEMS,
    BatchOutcome,
    InvalidFormat,
    ItemResult,
    Part,
    PayloadTooLarge,
    ReadingRejected,
    SubmittingGateway,
    SubmittingMeter,
    accept_batch,
    accept_together,
    claim_submitter,
    gateway_meters,
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


def _authenticated(
    session: Session, state: ApiState, api_key: str, now: datetime, readings: int
) -> SubmittingMeter | SubmittingGateway:
    """The meter or gateway behind the key (its contact time recorded). A meter's own key
    spends its budget for `readings` here; a gateway's meters spend theirs once named.

    Unknown keys and rate-limited requests write no event: anyone can send them,
    so they must not be able to flood the event log (they are counted in /metrics).
    """
    try:
        submitter = claim_submitter(session, api_key, now)
        if isinstance(submitter, SubmittingMeter):
            state.meter_budget.spend(submitter.id, readings)
    except (MeterUnauthenticated, RateLimited, PayloadTooLarge) as error:
        state.metrics.reject(error.code)
        raise
    return submitter


async def accept_individually(state: ApiState, request: ReadingRequest) -> JSONResponse:
    """One reading through any door: accepted with the requests arriving together, in one
    commit (api/group_ingest.py), answered after it."""
    assert state.reading_group is not None, "the reading group starts with the app"
    answer = await asyncio.wrap_future(state.reading_group.submit(request))
    if isinstance(answer, DomainError):
        raise answer
    return answer


def _batch_items(body: JsonBody) -> list | None:
    readings = body.value.get("readings") if isinstance(body.value, dict) else None
    return readings if isinstance(readings, list) else None


def _readings_carried(items: list | None) -> int:
    """What a batch spends: one token per item; an oversized batch is refused (413) by
    acceptance and spends one, like any request that stores nothing."""
    return len(items) if items is not None and len(items) <= MAX_BATCH_ITEMS else 1


def refuse_body(session: Session, meter: SubmittingMeter, body: JsonBody, now: datetime) -> None:
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
    return await accept_individually(state, ReadingRequest(api_key, body))


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

    def counted(results: list[ItemResult]) -> list[ItemResult]:
        for result in results:
            if result.status == "accepted":
                state.metrics.accepted.inc()
            elif result.error is not None:
                state.metrics.reject(result.error.code)
            else:
                state.metrics.duplicates.inc()
        return results

    def judge(
        session: Session, meter: SubmittingMeter, items: list[Any], now: datetime
    ) -> list[ItemResult]:
        return counted(accept_batch(session, meter, items, state.config(), now=now).results)

    def judge_together(
        session: Session, parts: list[Part], now: datetime
    ) -> list[BatchOutcome | ReadingRejected]:
        answers = accept_together(session, parts, state.config(), now=now)
        for answer in answers:
            if isinstance(answer, BatchOutcome):
                counted(answer.results)
        return answers

    def work(
        session: Session, submitter: SubmittingMeter | SubmittingGateway, now: datetime
    ) -> list[ItemResult]:
        if isinstance(submitter, SubmittingGateway):
            if body.error is not None:
                raise body.error
            if readings is None:
                raise InvalidFormat('the body is {"readings": [ ... ]}', field="readings")
            return gateway_batch(session, state, submitter, readings, now, judge_together)
        refuse_body(session, submitter, body, now)
        if readings is None:
            error = InvalidFormat('the body is {"readings": [ ... ]}', field="readings")
            record_rejection(session, submitter, error, now=now)
            raise error
        return judge(session, submitter, readings, now)

    def run() -> JSONResponse:
        now = state.now()
        with state.core.sessions() as session:
            submitter = _authenticated(session, state, api_key, now, _readings_carried(readings))
            try:
                results = work(session, submitter, now)
            except ReadingRejected as error:
                state.metrics.reject(error.code)
                raise
        return JSONResponse(
            {
                "accepted": sum(r.status == "accepted" for r in results),
                "rejected": sum(r.status == "rejected" for r in results),
                "duplicates": sum(r.status == "duplicate" for r in results),
                "results": [item_out(result) for result in results],
            }
        )

    return await anyio.to_thread.run_sync(run, limiter=state.db_limiter)


def gateway_batch(
    session: Session,
    state: ApiState,
    gateway: SubmittingGateway,
    readings: list[Any],
    now: datetime,
    judge: Callable[[Session, list[Part], datetime], list[BatchOutcome | ReadingRejected]],
) -> list[ItemResult]:
    """A gateway's batch, set-based: its meters resolved in one lookup, each meter's
    budget spent for its own readings, and every meter's readings stored together in
    one transaction (the meters locked in id order, so two gateways' batches cannot
    deadlock). A reading for a meter not assigned to the gateway, over its meter's
    budget, or for a suspended meter is rejected with the reason; the rest are judged."""
    if len(readings) > MAX_BATCH_ITEMS:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH_ITEMS} readings, got {len(readings)}",
            field="readings",
        )
    groups: dict[str, list[int]] = {}
    results: list[ItemResult] = []

    def refuse(indices: list[int], error: Exception) -> None:
        assert isinstance(error, DomainError), error
        state.metrics.reject(error.code, len(indices))
        results.extend(ItemResult(i, "rejected", error=error) for i in indices)

    for index, item in enumerate(readings):
        serial = item.get("meter_serial") if isinstance(item, dict) else None
        if isinstance(serial, str) and SERIAL_PATTERN.fullmatch(serial.strip()):
            groups.setdefault(serial.strip(), []).append(index)
        else:
            refuse(
                [index], InvalidFormat("each reading names its meter_serial", field="meter_serial")
            )
    named = list(groups.items())
    resolved = gateway_meters(session, [(gateway, serial) for serial, _ in named])
    found = [
        (meter, indices)
        for meter, (_, indices) in zip(resolved, named, strict=True)
        if isinstance(meter, SubmittingMeter)
    ]
    for meter, (_, indices) in zip(resolved, named, strict=True):
        if isinstance(meter, ReadingRejected):
            refuse(indices, meter)  # forbidden / unknown_meter: nothing read or stored
    refusals = state.meter_budget.spend_many([(m.id, len(indices)) for m, indices in found])
    admitted = []
    for (meter, indices), refusal in zip(found, refusals, strict=True):
        if refusal is None:
            admitted.append((meter, indices))
        else:
            refuse(indices, refusal)  # rate_limited (or more than a burst): no event
    parts = [Part(meter, [readings[i] for i in indices]) for meter, indices in admitted]
    for (_, indices), answer in zip(admitted, judge(session, parts, now), strict=True):
        if isinstance(answer, ReadingRejected):
            refuse(indices, answer)  # the meter refused whole (suspended): its event is written
        else:
            results.extend(
                dataclasses.replace(result, index=indices[result.index])
                for result in answer.results
            )
    return sorted(results, key=lambda result: result.index)
