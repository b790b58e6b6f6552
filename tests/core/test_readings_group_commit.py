"""Group commit in core: many requests' readings judged as each would be alone, one commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, MeterReading
from core.group_commit import GroupCommit
from core.readings import (
    Acceptance,
    DuplicateReading,
    InvalidSignature,
    Part,
    accept_readings,
    meters_by_serial,
)
from tests.factories import NOW, make_meter

AT = NOW - timedelta(hours=2)


@contextmanager
def commits(session: Session) -> Iterator[list[int]]:
    counted: list[int] = []

    def count(_session: Session) -> None:
        counted.append(1)

    event.listen(session, "after_commit", count)
    try:
        yield counted
    finally:
        event.remove(session, "after_commit", count)


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_many_meters_requests_share_one_commit_and_keep_their_own_answers(app: App) -> None:
    with app.sessions() as session:
        keys = [make_meter(session, serial=f"G-{n}") for n in range(5)]
        meters = meters_by_serial(session, [k.meter.serial for k in keys])
        forged = {**keys[4].payload(at=AT), "kwh_amount": "9"}
        bodies = [k.payload(kwh=f"1.{n}", at=AT) for n, k in enumerate(keys[:4])] + [forged]
        parts = [
            Part(meters[k.meter.serial], [b], in_batch=False)
            for k, b in zip(keys, bodies, strict=True)
        ]
        events_before = _count(session, Event)
        with commits(session) as counted:
            answers = accept_readings(session, parts, app.config(), now=NOW)
        assert len(counted) == 1
        assert [type(a) for a in answers] == [Acceptance] * 4 + [InvalidSignature]
        assert all(a.created for a in answers[:4])  # type: ignore[union-attr]
        stored = session.execute(
            select(MeterReading.meter_id, MeterReading.kwh_micro).order_by(MeterReading.meter_id)
        ).all()
        assert stored == [(k.meter.id, 1_000_000 + n * 100_000) for n, k in enumerate(keys[:4])]
        # Four meter_reading_received and one meter_reading_validation_failed, as alone.
        types = session.scalars(select(Event.type).where(Event.id > events_before)).all()
        assert sorted(types) == ["meter_reading_received"] * 4 + ["meter_reading_validation_failed"]


def test_a_reading_and_its_resend_in_one_group_store_once(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="G-R")
        meter = meters_by_serial(session, ["G-R"])["G-R"]
        body = keys.payload(kwh="2.5", at=AT)
        parts = [Part(meter, [body], in_batch=False), Part(meter, [dict(body)], in_batch=False)]
        first, again = accept_readings(session, parts, app.config(), now=NOW)
        assert isinstance(first, Acceptance) and first.created
        assert isinstance(again, Acceptance) and not again.created
        assert first.reading is not None and again.reading is not None
        assert again.reading.id == first.reading.id
        assert _count(session, MeterReading) == 1


def test_two_readings_of_one_meter_in_the_window_in_one_group_are_a_duplicate(
    app: App,
) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="G-D")
        meter = meters_by_serial(session, ["G-D"])["G-D"]
        near = AT + timedelta(minutes=1)  # within the 15-minute duplicate window
        parts = [
            Part(meter, [keys.payload(kwh="1", at=AT)], in_batch=False),
            Part(meter, [keys.payload(kwh="2", at=near)], in_batch=False),
        ]
        first, second = accept_readings(session, parts, app.config(), now=NOW)
        assert isinstance(first, Acceptance) and first.created
        assert isinstance(second, DuplicateReading)
        assert first.reading is not None
        assert second.details["existing_reading_id"] == first.reading.id
        assert _count(session, MeterReading) == 1


def test_a_failing_commit_fails_every_request_of_the_group_and_stores_nothing(app: App) -> None:
    with app.sessions() as session:
        keys = [make_meter(session, serial=f"G-F{n}") for n in range(3)]
        meters = meters_by_serial(session, [k.meter.serial for k in keys])
        parts = [Part(meters[k.meter.serial], [k.payload(at=AT)], in_batch=False) for k in keys]
        events_before = _count(session, Event)

        def fail(_session: Session) -> None:
            raise OperationalError("COMMIT", {}, Exception("the server went away"))

        event.listen(session, "before_commit", fail)
        try:
            with pytest.raises(OperationalError):
                accept_readings(session, parts, app.config(), now=NOW)
        finally:
            event.remove(session, "before_commit", fail)
        session.rollback()
        assert _count(session, MeterReading) == 0
        assert _count(session, Event) == events_before
        # The same requests again (the callers' retry) are accepted, each once.
        answers = accept_readings(session, parts, app.config(), now=NOW)
        assert all(isinstance(a, Acceptance) and a.created for a in answers)
        assert _count(session, MeterReading) == 3


class _Gate:
    """A group handler whose first group waits until `expected` more items are queued."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started = threading.Event()
        self.submitted = threading.Semaphore(0)
        self.groups: list[list[int]] = []

    def handle(self, items: list[int]) -> list[int | BaseException]:
        if not self.groups:
            self.started.set()
            for _ in range(self.expected):
                assert self.submitted.acquire(timeout=30)
        self.groups.append(items)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_items_queued_while_a_group_commits_form_the_next_group() -> None:
    gate = _Gate(expected=5)
    group: GroupCommit[int, int] = GroupCommit(gate.handle, workers=1)
    try:
        futures = [group.submit(0)]
        assert gate.started.wait(timeout=30)  # the first group is being handled
        for n in range(1, 6):
            futures.append(group.submit(n))
            gate.submitted.release()
        assert futures[0].result(timeout=30) == 0
        assert [f.exception(timeout=30) is None for f in futures] == [
            True, False, True, False, True, False,
        ]  # fmt: skip
        assert futures[4].result() == 40
        assert str(futures[5].exception()) == "odd 5"
    finally:
        group.close()
    assert gate.groups == [[0], [1, 2, 3, 4, 5]]


def test_a_failing_group_fails_each_of_its_callers() -> None:
    def handle(items: list[int]) -> list[int]:
        raise OperationalError("COMMIT", {}, Exception("down"))

    group: GroupCommit[int, int] = GroupCommit(handle, workers=1)
    try:
        futures = [group.submit(n) for n in range(3)]
        assert all(isinstance(f.exception(timeout=30), OperationalError) for f in futures)
    finally:
        group.close()
