"""One group of messages, accepted in one transaction: what the bridge does between
receiving and acknowledging. No broker here, so it is tested and benchmarked alone.

The topic names the meter: the reading's own `meter_serial` must be that meter's
(another meter's topic: `forbidden`) and its signature must verify against that
meter's key (another meter's key: `invalid_signature`); the broker's ACL is a second
fence, not the only one. A topic naming no registered meter is refused
`unknown_meter` without an event, as the HTTP API refuses an unknown key.

Each message spends its meter's reading budget first (core.readings.budget, one
token per reading, at least one), as every door does; a message over budget is
refused `rate_limited` without an event, as the HTTP API refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.bootstrap import App
from core.db.types import utcnow
from core.errors import DomainError
from core.readings import (
    BatchOutcome,
    Part,
    SubmittingMeter,
    UnknownMeter,
    accept_together,
    meters_by_serial,
)
from core.readings.budget import ReadingBudget
from core.readings.gridtokenx import parse_gridtokenx_ingest
from core.readings.rules import parse_submission
from core.readings.shared_budget import SharedReadingBudget
from mqtt_ingest.messages import Decoded, ack_for, decode, outcomes_of
from mqtt_ingest.topics import Form, Topics

# Each topic's form has its parser into the one checked submission; the rules after it
# are the same for every door.
PARSERS = {Form.OURS: parse_submission, Form.GRIDTOKENX: parse_gridtokenx_ingest}


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as the broker delivered it."""

    topic: str
    payload: bytes
    retained: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """What to publish for one message: the ack (None: the topic is not ours) and the
    outcome of each of its readings, for the counters."""

    serial: str | None
    ack: dict[str, Any] | None
    outcomes: list[str]


def accept_messages(
    app: App,
    topics: Topics,
    messages: Sequence[Inbound],
    budget: ReadingBudget | SharedReadingBudget,
    *,
    now: datetime | None = None,
) -> list[Answer]:
    """Accept a group of messages in one transaction; one answer per message, in order."""
    now = now or utcnow()
    routes = [topics.route(message.topic) for message in messages]
    serials = [route[0] if route else None for route in routes]
    decoded = [
        decode(m.payload, retained=m.retained, form=r[1], serial=r[0]) if r else Decoded()
        for m, r in zip(messages, routes, strict=True)
    ]
    with app.sessions() as session:
        meters = meters_by_serial(session, {s for s in serials if s is not None})
        parts: list[Part] = []
        answers: list[BatchOutcome | DomainError | None] = []
        spending: list[tuple[int, SubmittingMeter, Decoded, Form]] = []
        for position, (route, message) in enumerate(zip(routes, decoded, strict=True)):
            serial = route[0] if route else None
            meter = meters.get(serial) if serial is not None else None
            answers.append(None)
            if route is None or serial is None:
                continue
            if meter is None:
                answers[position] = UnknownMeter(f"no meter with serial {serial!r}")
            else:
                spending.append((position, meter, message, route[1]))
        # Every message's budget in one statement (PostgreSQL), not a round trip each.
        refusals = budget.spend_many(
            [(meter.id, 0 if m.refusal else len(m.items)) for _, meter, m, _ in spending]
        )
        for (position, meter, message, form), refusal in zip(spending, refusals, strict=True):
            if refusal is not None:
                answers[position] = refusal  # type: ignore[assignment]
                continue
            parse = PARSERS[form]
            parts.append(Part(meter, message.items, message.refusal, message.batch, parse))
        session.rollback()  # nothing read above is locked: acceptance locks the meters
        accepted = iter(accept_together(session, parts, app.config(), now=now) if parts else [])
    result = []
    for serial, message, answer in zip(serials, decoded, answers, strict=True):
        if serial is None:
            result.append(Answer(None, None, []))
            continue
        final = answer if answer is not None else next(accepted)
        result.append(_answer(serial, message, final))
    return result


def _answer(serial: str, decoded: Decoded, answer: BatchOutcome | DomainError) -> Answer:
    return Answer(serial, ack_for(decoded, answer), outcomes_of(answer, decoded))
