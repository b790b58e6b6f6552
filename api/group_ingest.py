"""Individual readings, through any ingest door, accepted in groups (group commit).

Requests arriving together (core.group_commit) are one unit of work: one query finds
every meter key's meter, one every gateway key's gateway, one the meters the gateways
name, one statement spends every meter's reading budget, and
core.readings.accept_readings judges and stores them all in one transaction and one
commit. Each request is answered only after that commit, with exactly what it would
have got alone: the same codes, events, duplicate and resend answers. A request that
fails (unknown key, budget spent, a rule) fails alone; a failing commit fails the
whole group, none of it stored (503 database_unavailable: retry).

A door (`Door`) says only where a gateway's request names its meter, how its body
becomes the checked submission's input (its parser) and how an acceptance is
answered; the rules are core.readings' for every door, and requests of different
doors share a group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.body import JsonBody
from api.serialize import reading_out
from core.errors import DomainError
from core.group_commit import GroupCommit
from core.meters import SERIAL_PATTERN, MeterUnauthenticated, hash_api_key
from core.readings import (
    Acceptance,
    InvalidFormat,
    Part,
    ReadingRejected,
    SubmittingGateway,
    SubmittingMeter,
    accept_readings,
)
from core.readings.identity import (
    GATEWAY_KEY_PREFIX,
    UNKNOWN_GATEWAY_KEY,
    gateway_meters,
    gateways_by_key_hash,
    meters_by_key_hash,
)
from core.readings.rules import Submission, parse_submission

if TYPE_CHECKING:
    from api.state import ApiState

Parser = Callable[[Any], Submission]
# A door's parsers for its requests of a group, (meter, body) each: a parser, or why the
# body is refused before any rule (the refusal's event is written like any other).
Preparer = Callable[
    ["ApiState", Session, Sequence[tuple[SubmittingMeter, Any]]], list[Parser | ReadingRejected]
]


def _our_parsers(
    _state: ApiState, _session: Session, requests: Sequence[tuple[SubmittingMeter, Any]]
) -> list[Parser | ReadingRejected]:
    return [parse_submission] * len(requests)


def _our_answer(meter: SubmittingMeter, acceptance: Acceptance) -> JSONResponse:
    assert acceptance.reading is not None
    return JSONResponse(reading_out(acceptance.reading), 201 if acceptance.created else 200)


@dataclass(frozen=True, slots=True)
class Door:
    """What differs between ingest doors: the wire form, never the rules."""

    serial_field: str  # where a gateway's request names its meter
    parsers: Preparer
    answer: Callable[[SubmittingMeter, Acceptance], JSONResponse]


SUBMIT_READING = Door("meter_serial", _our_parsers, _our_answer)


@dataclass(frozen=True, slots=True)
class ReadingRequest:
    api_key: str
    body: JsonBody
    door: Door = SUBMIT_READING


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
    with state.core.sessions() as session:
        known = _meters_of(session, requests, answers, now)
        spends = state.meter_budget.spend_many([(meter.id, 1) for _, meter in known])
        admitted: list[tuple[int, SubmittingMeter]] = []
        for (position, meter), refusal in zip(known, spends, strict=True):
            if refusal is not None:
                answers[position] = refusal  # type: ignore[assignment]
            else:
                admitted.append((position, meter))
        parts = _parts(state, session, requests, admitted)
        # No meter row is read under lock above: accept_readings touches and locks them.
        session.rollback()
        accepted = accept_readings(session, parts, state.config(), now=now) if parts else []
    for (position, meter), answer in zip(admitted, accepted, strict=True):
        answers[position] = _answer(state, requests[position].door, meter, answer)
    for answer in answers:
        if isinstance(answer, DomainError):
            state.metrics.reject(answer.code)
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def _meters_of(
    session: Session, requests: list[ReadingRequest], answers: list[Answer | None], now: datetime
) -> list[tuple[int, SubmittingMeter]]:
    """The meter of each request, by its key or named by its gateway; refusals to `answers`.

    A gateway's contact time, when due, is committed here (at most every 30 s per
    gateway): the lookup's transaction is otherwise rolled back.
    """
    hashes = [hash_api_key(r.api_key) if r.api_key else "" for r in requests]
    gateway_key = [r.api_key.startswith(GATEWAY_KEY_PREFIX) for r in requests]
    pairs = list(zip(hashes, gateway_key, strict=True))
    meters = meters_by_key_hash(session, [h for h, g in pairs if h and not g])
    gateways, contact = gateways_by_key_hash(session, [h for h, g in pairs if h and g], now)
    if contact:
        session.commit()
    found: list[tuple[int, SubmittingMeter]] = []
    named: list[tuple[int, SubmittingGateway, str]] = []
    for position, (request, key_hash) in enumerate(zip(requests, hashes, strict=True)):
        if not key_hash:
            answers[position] = MeterUnauthenticated(
                "a meter API key is required (Authorization or X-API-Key)"
            )
        elif gateway_key[position]:
            gateway = gateways.get(key_hash)
            if gateway is None:
                answers[position] = MeterUnauthenticated(UNKNOWN_GATEWAY_KEY)
                continue
            try:
                named.append((position, gateway, _named_serial(request)))
            except ReadingRejected as error:
                answers[position] = error  # before any meter: no event
        elif (meter := meters.get(key_hash)) is not None:
            found.append((position, meter))
        else:
            answers[position] = MeterUnauthenticated("unknown meter API key")
    resolved = gateway_meters(session, [(gateway, serial) for _, gateway, serial in named])
    for (position, _, _), meter in zip(named, resolved, strict=True):
        if isinstance(meter, ReadingRejected):
            answers[position] = meter  # forbidden / unknown_meter: nothing read or stored
        else:
            found.append((position, meter))
    return sorted(found, key=lambda entry: entry[0])


def _named_serial(request: ReadingRequest) -> str:
    """The serial a gateway's request names (the body's own error first)."""
    body, field = request.body, request.door.serial_field
    if body.error is not None:
        raise body.error
    serial = body.value.get(field) if isinstance(body.value, dict) else None
    if not isinstance(serial, str) or not SERIAL_PATTERN.fullmatch(serial.strip()):
        raise InvalidFormat("a gateway names the meter of each reading by its serial", field=field)
    return serial.strip()


def _parts(
    state: ApiState,
    session: Session,
    requests: list[ReadingRequest],
    admitted: list[tuple[int, SubmittingMeter]],
) -> list[Part]:
    """Each admitted request as one reading's part, parsed by its door's parser."""
    parsers: dict[int, Parser | ReadingRejected] = {}
    by_door: dict[Door, list[tuple[int, SubmittingMeter]]] = {}
    for position, meter in admitted:
        if requests[position].body.error is None:
            by_door.setdefault(requests[position].door, []).append((position, meter))
    for door, entries in by_door.items():
        bodies = [(meter, requests[position].body.value) for position, meter in entries]
        for (position, _), parser in zip(
            entries, door.parsers(state, session, bodies), strict=True
        ):
            parsers[position] = parser
    parts = []
    for position, meter in admitted:
        body = requests[position].body
        parser = parsers.get(position, parse_submission)
        refusal = body.error or (parser if isinstance(parser, ReadingRejected) else None)
        parse = parse_submission if isinstance(parser, ReadingRejected) else parser
        parts.append(Part(meter, [body.value], refusal=refusal, in_batch=False, parse=parse))
    return parts


def _answer(
    state: ApiState, door: Door, meter: SubmittingMeter, answer: Acceptance | ReadingRejected
) -> Answer:
    if isinstance(answer, ReadingRejected):
        return answer
    (state.metrics.accepted if answer.created else state.metrics.duplicates).inc()
    return door.answer(meter, answer)
