"""Individual readings submitted with a meter's own key, accepted in groups (group commit).

Requests arriving together (core.group_commit) are one unit of work: one query finds
every key's meter, one statement spends every meter's reading budget, and
core.readings.accept_readings judges and stores them all in one transaction and one
commit. Each request is answered only after that commit, with exactly what it would
have got alone: the same codes, events, duplicate and resend answers. A request that
fails (unknown key, budget spent, a rule) fails alone; a failing commit fails the
whole group, none of it stored (503 database_unavailable: retry).

Gateway keys name the meter per reading and go through api/routes/ingest.py's
per-request unit of work instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse

from api.body import JsonBody
from api.serialize import reading_out
from core.errors import DomainError
from core.group_commit import GroupCommit
from core.meters import MeterUnauthenticated, hash_api_key
from core.readings import Acceptance, Part, ReadingRejected, SubmittingMeter, accept_readings
from core.readings.identity import meters_by_key_hash

if TYPE_CHECKING:
    from api.state import ApiState


@dataclass(frozen=True, slots=True)
class ReadingRequest:
    api_key: str
    body: JsonBody


Answer = JSONResponse | DomainError


def reading_group(state: ApiState, *, workers: int = 2) -> GroupCommit[ReadingRequest, Answer]:
    return GroupCommit(
        lambda requests: accept_requests(state, requests),
        workers=workers,
        name="ingest-group",
    )


def accept_requests(state: ApiState, requests: list[ReadingRequest]) -> list[Answer]:
    """One answer per request, in order, all stored in one commit (see the module doc)."""
    now = state.now()
    answers: list[Answer | None] = [None] * len(requests)
    hashes = [hash_api_key(r.api_key) if r.api_key else "" for r in requests]
    with state.core.sessions() as session:
        meters = meters_by_key_hash(session, [h for h in hashes if h])
        known: list[tuple[int, SubmittingMeter]] = []
        for position, key_hash in enumerate(hashes):
            meter = meters.get(key_hash)
            if meter is None:
                answers[position] = MeterUnauthenticated(
                    "unknown meter API key"
                    if key_hash
                    else "a meter API key is required (Authorization or X-API-Key)"
                )
            else:
                known.append((position, meter))
        spends = state.meter_budget.spend_many([(meter.id, 1) for _, meter in known])
        parts: list[Part] = []
        placed: list[int] = []
        for (position, meter), refusal in zip(known, spends, strict=True):
            if refusal is not None:
                answers[position] = refusal  # type: ignore[assignment]
                continue
            body = requests[position].body
            parts.append(Part(meter, [body.value], refusal=body.error, in_batch=False))
            placed.append(position)
        # No meter row is read under lock above: accept_readings touches and locks them.
        session.rollback()
        accepted = accept_readings(session, parts, state.config(), now=now) if parts else []
    for position, answer in zip(placed, accepted, strict=True):
        answers[position] = _response(state, answer)
    for answer in answers:
        if isinstance(answer, DomainError) and not isinstance(answer, ReadingRejected):
            state.metrics.reject(answer.code)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def _response(state: ApiState, answer: Acceptance | ReadingRejected) -> Answer:
    if isinstance(answer, ReadingRejected):
        state.metrics.reject(answer.code)
        return answer
    (state.metrics.accepted if answer.created else state.metrics.duplicates).inc()
    assert answer.reading is not None
    return JSONResponse(reading_out(answer.reading), 201 if answer.created else 200)
