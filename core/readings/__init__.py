"""Validation and acceptance of meter readings: one set of rules for the API, the dashboard
and the tests.

Public API:

- `submitting_meter(session, api_key) -> SubmittingMeter`: the meter holding an
  API key with what acceptance needs (serial, owner, wallet, public key, status);
  `MeterUnauthenticated` otherwise. `meter_identity(session, meter)` for a Meter row.
  `claim_meter(session, api_key, now)` also records the contact time in the same
  statement and opens the write transaction (the API's ingest path).
- `claim_submitter(session, api_key, now)`: the meter or the gateway (core.gateways)
  holding a key; `gateway_meters(session, [(gateway, serial), ...])` the meters a
  gateway names, each if assigned to it (else `forbidden` / `unknown_meter`).
- `accept_reading(session, meter, raw, config, *, now=None, parse=parse_submission)
  -> Acceptance`: `raw` is the JSON object as parsed with `parse_float=Decimal`;
  `parse` is the door's parser into the checked submission (ours, or
  core.readings.gridtokenx's). Returns the
  stored reading and `created` (False: the identical reading was already stored,
  a meter's retry). Raises a `ReadingRejected` subclass with a CONTRACT code
  after committing its `meter_reading_validation_failed` event. Commits.
- `accept_readings(session, parts, config, *, now=None)`: `accept_reading` for many
  requests at once, one transaction and one commit (group commit, core.group_commit);
  each part's acceptance or its error, in order.
- `accept_batch(session, meter, items, config, *, now=None) -> BatchOutcome`:
  every valid item is stored in one transaction, each item reported as
  accepted / duplicate / rejected. Commits.
- `accept_together(session, parts, config, *, now=None)`: several meters' `Part`s
  judged as `accept_batch` judges each, stored in one transaction (a door that
  receives many meters at once, the MQTT bridge). `meters_by_serial(session,
  serials)` finds the meters a door names by serial. Commits.
- `record_rejection(session, meter, error, *, now=None)`: the staff-only event
  for a refused request (used for refusals found outside these functions,
  e.g. an oversized body). Commits.

Telemetry (a GridTokenX frame: `Submission.sample`) takes the same path up to
storing; then each sample is stored and settled into its interval
(core.readings.samples, core.settlement) in the same transaction, and its result
names the sample. `Acceptance.sample` carries it (`reading` is None).

Duplicates: same meter and |Δt| < duplicate_window_secs. The identical reading
(same timestamp, kWh and signature) is a resend and is answered with the stored
reading; anything else in the window is `duplicate_reading`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import Meter, MeterStatus
from core.db.types import utcnow
from core.events import EventType, publish
from core.readings.errors import (
    DuplicateReading,
    ForeignMeter,
    InvalidFormat,
    InvalidSignature,
    KwhOutOfRange,
    MeterSuspended,
    PayloadTooLarge,
    ReadingRejected,
    ReadingTooOld,
    ReplayedCounter,
    TimestampInFuture,
    TooManyDecimals,
    UnknownMeter,
)
from core.readings.identity import (
    SubmittingGateway,
    SubmittingMeter,
    claim_meter,
    claim_submitter,
    gateway_meters,
    meter_identity,
    meters_by_serial,
    submitting_meter,
)
from core.readings.queries import ReadingView, get_reading
from core.readings.rules import CheckedReading, Submission, check_submission, parse_submission
from core.readings.samples import SampleStored, store_samples
from core.readings.store import (
    MeterReadings,
    Stored,
    store_checked,
    touch_meter,
    touch_meters,
    view_of_new,
)

__all__ = [
    "MAX_BATCH_ITEMS",
    "Acceptance",
    "BatchOutcome",
    "DuplicateReading",
    "ForeignMeter",
    "InvalidFormat",
    "InvalidSignature",
    "ItemResult",
    "KwhOutOfRange",
    "MeterSuspended",
    "Part",
    "PayloadTooLarge",
    "ReadingRejected",
    "ReadingTooOld",
    "ReplayedCounter",
    "SubmittingGateway",
    "SubmittingMeter",
    "TimestampInFuture",
    "TooManyDecimals",
    "UnknownMeter",
    "accept_batch",
    "accept_reading",
    "accept_readings",
    "accept_together",
    "claim_meter",
    "claim_submitter",
    "gateway_meters",
    "meter_identity",
    "meters_by_serial",
    "record_rejection",
    "submitting_meter",
]

Parser = Callable[[Any], Submission]

MAX_BATCH_ITEMS = 1000
# Refusals in one batch that each get an event; the rest are counted in the last one,
# so one bad request cannot write a thousand staff events.
MAX_REJECTION_EVENTS_PER_REQUEST = 20
_MAX_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A stored reading, or for telemetry the stored sample (its interval settles it)."""

    reading: ReadingView | None
    created: bool
    sample: SampleStored | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: int | None = None
    error: ReadingRejected | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    results: list[ItemResult]

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)


def record_rejection(
    session: Session,
    meter: SubmittingMeter,
    error: ReadingRejected,
    *,
    now: datetime | None = None,
) -> None:
    """The staff-only event for a request refused as a whole. Commits."""
    now = now or utcnow()
    session.rollback()
    touch_meter(session, meter.id, now)
    _publish_rejection(session, meter, error, now=now)
    session.commit()


def _publish_rejection(
    session: Session, meter: SubmittingMeter, error: ReadingRejected, *, now: datetime, **extra: Any
) -> None:
    publish(
        session,
        EventType.METER_READING_VALIDATION_FAILED,
        {
            "meter_serial": meter.serial,
            "error_code": error.code,
            "error_reason": error.message,
            "field": error.field,
            **error.details,
            **extra,
        },
        at=now,
    )
    if error.code == InvalidSignature.code:
        # Imported here: core.meter_health reads the samples this package stores.
        from core import meter_health

        flag = meter_health.signature_run_flag(session, meter.serial, now)
        if flag is not None:
            meter_health.raise_flag(
                session, serial=meter.serial, owner_id=meter.owner_id, flag=flag, now=now
            )


def _refuse_suspended(meter: SubmittingMeter) -> None:
    if meter.status == MeterStatus.SUSPENDED:
        raise MeterSuspended(f"meter {meter.serial!r} is suspended; ask an admin to resume it")


def _check_all(
    session: Session,
    meter: SubmittingMeter,
    items: Sequence[Any],
    config: TokenizationConfig,
    now: datetime,
    parse: Parser = parse_submission,
) -> tuple[list[tuple[int, CheckedReading]], list[tuple[int, ReadingRejected]]]:
    checked: list[tuple[int, CheckedReading]] = []
    rejected: list[tuple[int, ReadingRejected]] = []
    seen: dict[str, bool] = {}
    for index, raw in enumerate(items):
        submission = None
        try:
            submission = parse(raw)
            reading = check_submission(
                submission,
                meter_serial=meter.serial,
                public_key=meter.public_key,
                config=config,
                now=now,
            )
            checked.append((index, reading))
        except ForeignMeter as error:
            assert submission is not None
            known = _serial_exists(session, submission.meter_serial, seen)
            rejected.append(
                (index, error if known else _unknown(submission.meter_serial, error.field))
            )
        except ReadingRejected as error:
            rejected.append((index, error))
    return checked, rejected


def _serial_exists(session: Session, serial: str, seen: dict[str, bool]) -> bool:
    # Memoised per request: a batch naming one foreign serial a thousand times
    # costs one query.
    if serial not in seen:
        seen[serial] = session.scalar(select(Meter.id).where(Meter.serial == serial)) is not None
    return seen[serial]


def _unknown(serial: str, field: str | None = None) -> UnknownMeter:
    return UnknownMeter(f"no meter with serial {serial.strip()!r}", field=field)


@dataclass(frozen=True, slots=True)
class Part:
    """One meter's share of a unit of work: its readings, or why it is refused whole.

    `in_batch`: the items came as a batch (their events carry `batch_index`);
    `parse`: the door's parser of each item (ours, or the GridTokenX form's).
    """

    meter: SubmittingMeter
    items: Sequence[Any]
    refusal: ReadingRejected | None = None
    in_batch: bool = True
    parse: Parser = parse_submission


@dataclass(slots=True)
class _Judged:
    part: Part
    checked: list[tuple[int, CheckedReading]]
    rejected: list[tuple[int, ReadingRejected]]
    stored: list[Stored]
    # Telemetry samples of the part (core.readings.samples), and those refused on storing.
    samples: list[tuple[int, SampleStored]] = field(default_factory=list)
    sample_rejected: list[tuple[int, ReadingRejected]] = field(default_factory=list)


def _store(
    session: Session, judged: Sequence[_Judged], config: TokenizationConfig, now: datetime
) -> None:
    """Store every part in one transaction with the rejections' events; retried after a lost race.

    Set-based across parts (core.readings.store): the meters are touched (on PostgreSQL:
    locked) in id order in one statement, so two units of work naming the same meters
    cannot deadlock, and every part's readings go in one INSERT.
    """
    # Stable: parts of one meter keep their arrival order (a reading before its resend).
    ordered = sorted(judged, key=lambda j: j.part.meter.id)
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            # A retry starts a new transaction: contact and locks were rolled back.
            touch_meters(
                session,
                [e.part.meter.id for e in ordered if attempt > 1 or e.part.meter.claimed_at != now],
                now,
            )
            storing = []
            for entry in ordered:
                if entry.part.refusal is not None:
                    _publish_rejection(session, entry.part.meter, entry.part.refusal, now=now)
                else:
                    storing.append(entry)
            _store_parts(session, storing, config, now)
            session.commit()
            return
        except IntegrityError:
            # Lost a race on UNIQUE(meter_id, reading_timestamp): nothing of this attempt
            # (readings, events) survives; the next attempt sees the winner.
            session.rollback()
            if attempt == _MAX_ATTEMPTS:
                raise
        except BaseException:
            # A failed commit (the database went away): nothing of any part is stored,
            # and the connection goes back to the pool with no transaction open.
            session.rollback()
            raise
    raise AssertionError("unreachable")


def _store_parts(
    session: Session, entries: Sequence[_Judged], config: TokenizationConfig, now: datetime
) -> None:
    readings = [
        MeterReadings(
            e.part.meter.id,
            e.part.meter.serial,
            e.part.meter.owner_id,
            e.part.meter.wallet_address,
            [(i, r) for i, r in e.checked if r.sample is None],
        )
        for e in entries
    ]
    for entry, stored in zip(entries, store_checked(session, readings, config, now), strict=True):
        entry.stored = stored
    _store_samples(session, entries, config, now)
    for entry in entries:
        _publish_refusals(session, entry, now)


def _store_samples(
    session: Session, entries: Sequence[_Judged], config: TokenizationConfig, now: datetime
) -> None:
    """Samples settle into intervals instead (core.settlement), in the same transaction,
    every part's together (core.readings.samples.store_samples)."""
    wanted = [
        (entry, index, reading)
        for entry in entries
        for index, reading in entry.checked
        if reading.sample is not None
    ]
    for entry in entries:
        entry.samples, entry.sample_rejected = [], []
    outcomes = store_samples(session, [(e.part.meter, r) for e, _, r in wanted], config, now)
    for (entry, index, _), outcome in zip(wanted, outcomes, strict=True):
        if isinstance(outcome, ReadingRejected):
            entry.sample_rejected.append((index, outcome))
        else:
            entry.samples.append((index, outcome))


def _publish_refusals(session: Session, entry: _Judged, now: datetime) -> None:
    refusals = (
        entry.rejected
        + entry.sample_rejected
        + [(s.index, s.duplicate_error()) for s in entry.stored if s.conflict]
    )
    for position, (index, error) in enumerate(sorted(refusals, key=lambda r: r[0])):
        if position == MAX_REJECTION_EVENTS_PER_REQUEST:
            break
        extra: dict[str, Any] = {"batch_index": index} if entry.part.in_batch else {}
        if position == MAX_REJECTION_EVENTS_PER_REQUEST - 1:
            extra["more_rejections"] = len(refusals) - MAX_REJECTION_EVENTS_PER_REQUEST
        _publish_rejection(session, entry.part.meter, error, now=now, **extra)


def _outcome(entry: _Judged) -> BatchOutcome:
    results = [
        ItemResult(index, "rejected", error=error)
        for index, error in entry.rejected + entry.sample_rejected
    ]
    for index, sample in entry.samples:
        results.append(ItemResult(index, "accepted" if sample.created else "duplicate", sample.id))
    for s in entry.stored:
        if s.created:
            results.append(ItemResult(s.index, "accepted", s.known.id))
        elif s.conflict:
            results.append(ItemResult(s.index, "duplicate", s.known.id, s.duplicate_error()))
        else:
            results.append(ItemResult(s.index, "duplicate", s.known.id))
    return BatchOutcome(sorted(results, key=lambda result: result.index))


def _whole_refusal(part: Part) -> ReadingRejected | None:
    if part.refusal is not None:
        return part.refusal
    try:
        _refuse_suspended(part.meter)
        if len(part.items) > MAX_BATCH_ITEMS:
            raise PayloadTooLarge(
                f"a batch holds at most {MAX_BATCH_ITEMS} readings, got {len(part.items)}",
                field="readings",
            )
    except ReadingRejected as error:
        return error
    return None


def _judge(
    session: Session,
    parts: Sequence[Part],
    config: TokenizationConfig,
    now: datetime,
    *,
    requests: bool = False,
) -> list[_Judged]:
    """Each part checked; with `requests` a part's refused reading refuses the part whole
    (a request of one reading: its answer is the error, its event has no batch_index)."""
    judged = []
    for part in parts:
        refusal = _whole_refusal(part)
        if refusal is not None:
            judged.append(_Judged(replace(part, refusal=refusal), [], [], []))
            continue
        checked, rejected = _check_all(session, part.meter, part.items, config, now, part.parse)
        if rejected and requests:
            judged.append(_Judged(replace(part, refusal=rejected[0][1]), [], [], []))
            continue
        judged.append(_Judged(part, checked, rejected, []))
    return judged


def accept_together(
    session: Session,
    parts: Sequence[Part],
    config: TokenizationConfig,
    *,
    now: datetime | None = None,
) -> list[BatchOutcome | ReadingRejected]:
    """Every part judged as `accept_batch` judges it, all stored in one transaction.

    For doors that receive many meters' readings at once (the MQTT bridge): one
    commit for all of them. Each part's answer, in order: its outcome, or the error
    that refused it whole (its event is written). Commits.
    """
    now = now or utcnow()
    judged = _judge(session, parts, config, now)
    _store(session, judged, config, now)
    return [j.part.refusal if j.part.refusal is not None else _outcome(j) for j in judged]


def accept_readings(
    session: Session,
    parts: Sequence[Part],
    config: TokenizationConfig,
    *,
    now: datetime | None = None,
) -> list[Acceptance | ReadingRejected]:
    """`accept_reading` for many requests at once (group commit): each part one reading
    (`in_batch=False`), all stored in one transaction and one commit. Each part's answer,
    in order: its acceptance, or the error that refused it (its event is written). A
    failing commit raises for all of them: nothing of any part is stored. Commits.
    """
    now = now or utcnow()
    judged = _judge(session, parts, config, now, requests=True)
    _store(session, judged, config, now)
    answers: list[Acceptance | ReadingRejected] = []
    for entry in judged:
        meter = entry.part.meter
        if entry.part.refusal is not None:
            answers.append(entry.part.refusal)
        elif entry.sample_rejected:
            answers.append(entry.sample_rejected[0][1])
        elif entry.samples:
            [(_, sample)] = entry.samples
            answers.append(Acceptance(None, sample.created, sample))
        else:
            [stored] = entry.stored
            if stored.conflict:
                answers.append(stored.duplicate_error())
            elif stored.created:
                view = view_of_new(stored, meter.serial, meter.owner_id, meter.wallet_address, now)
                answers.append(Acceptance(view, True))
            else:
                assert stored.known.id is not None
                answers.append(Acceptance(get_reading(session, stored.known.id), False))
    return answers


def accept_reading(
    session: Session,
    meter: SubmittingMeter,
    raw: Any,
    config: TokenizationConfig,
    *,
    now: datetime | None = None,
    parse: Parser = parse_submission,
) -> Acceptance:
    """Validate and store one reading (see the module docstring). Commits.

    `parse` turns the door's body into the checked submission's input: ours by
    default, `parse_gridtokenx_ingest` for the GridTokenX bridge form; the rules
    after it are the same for every door.
    """
    part = Part(meter, [raw], in_batch=False, parse=parse)
    [answer] = accept_readings(session, [part], config, now=now)
    if isinstance(answer, ReadingRejected):
        raise answer
    return answer


def accept_batch(
    session: Session,
    meter: SubmittingMeter,
    items: Sequence[Any],
    config: TokenizationConfig,
    *,
    now: datetime | None = None,
) -> BatchOutcome:
    """Store every valid item in one transaction and report each one. Commits."""
    [answer] = accept_together(session, [Part(meter, items)], config, now=now)
    if isinstance(answer, ReadingRejected):
        raise answer
    return answer
