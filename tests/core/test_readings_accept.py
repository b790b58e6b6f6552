"""Accepting readings on a real database: storage, events, duplicates, resends, races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, Meter, MeterReading
from core.readings import (
    DuplicateReading,
    ForeignMeter,
    InvalidSignature,
    KwhOutOfRange,
    MeterSuspended,
    UnknownMeter,
    accept_batch,
    accept_reading,
    meter_identity,
)
from core.settings_store import update_settings
from tests.factories import NOW, MeterKeys, make_meter, make_user

AT = NOW - timedelta(minutes=30)


def events(session: Session, kind: str) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def count_readings(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(MeterReading)) or 0


def submit(app: App, session: Session, keys: MeterKeys, body: dict, **kw):
    meter = meter_identity(session, keys.meter)
    return accept_reading(session, meter, body, app.config(), now=kw.get("now", NOW))


def test_an_accepted_reading_is_stored_with_its_event(app: App) -> None:
    with app.sessions() as session:
        owner = make_user(session, "p1")
        keys = make_meter(session, owner, serial="M-1")
        accepted = submit(app, session, keys, keys.payload(kwh="2.01", at=AT))
        assert accepted.created
        reading = accepted.reading
        assert (reading.meter_serial, reading.user_id, reading.status) == (
            "M-1",
            owner.id,
            "pending",
        )
        assert (reading.kwh_micro, reading.wallet_address) == (2_010_000, owner.wallet_address)
        assert (reading.reading_timestamp, reading.submitted_at) == (AT, NOW)
        stored = session.get(MeterReading, reading.id)
        assert stored is not None and stored.kwh_micro == 2_010_000
        [received] = events(session, "meter_reading_received")
        assert received.user_id == owner.id
        assert received.payload == {
            "reading_id": reading.id,
            "user_id": owner.id,
            "wallet_address": owner.wallet_address,
            "meter_serial": "M-1",
            "kwh_amount": "2.010000",
            "reading_timestamp": "2026-11-20T11:30:00Z",
            "status": "pending",
        }
        session.expire_all()
        assert session.get(Meter, keys.meter.id).last_seen_at == NOW


def test_the_identical_reading_resent_is_the_same_reading(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        body = keys.payload(kwh="1.5", at=AT)
        first = submit(app, session, keys, body)
        again = submit(
            app, session, keys, {**body, "kwh_amount": "1.500000"}, now=NOW + timedelta(1)
        )
        assert (again.created, again.reading.id) == (False, first.reading.id)
        assert again.reading.submitted_at == NOW
        assert count_readings(session) == 1
        assert len(events(session, "meter_reading_received")) == 1
        assert events(session, "meter_reading_validation_failed") == []


@pytest.mark.parametrize(
    ("offset", "kwh"), [(timedelta(0), "1.6"), (timedelta(minutes=14, seconds=59), "1.5")]
)
def test_another_reading_in_the_window_is_a_duplicate(
    app: App, offset: timedelta, kwh: str
) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        first = submit(app, session, keys, keys.payload(kwh="1.5", at=AT)).reading
        with pytest.raises(DuplicateReading) as caught:
            submit(app, session, keys, keys.payload(kwh=kwh, at=AT - offset))
        assert caught.value.existing_reading_id == first.id
        assert caught.value.details == {"existing_reading_id": first.id}
        assert count_readings(session) == 1
        [failed] = events(session, "meter_reading_validation_failed")
        assert failed.user_id is None
        assert failed.payload["error_code"] == "duplicate_reading"
        assert failed.payload["existing_reading_id"] == first.id


def test_the_window_edge_and_a_zero_window(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        submit(app, session, keys, keys.payload(at=AT))
        assert submit(app, session, keys, keys.payload(at=AT + timedelta(minutes=15))).created
        update_settings(session, app.settings.tokenization, {"duplicate_window_secs": 0}, by="t")
        assert submit(app, session, keys, keys.payload(at=AT + timedelta(seconds=1))).created
        with pytest.raises(DuplicateReading):
            submit(app, session, keys, keys.payload(kwh="9", at=AT))


def test_rejections_write_a_staff_event_and_store_nothing(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        make_meter(session, serial="M-2")
        with pytest.raises(InvalidSignature):
            submit(app, session, keys, {**keys.payload(kwh="1.5"), "kwh_amount": "1.6"})
        with pytest.raises(ForeignMeter):
            submit(app, session, keys, keys.payload() | {"meter_serial": "M-2"})
        with pytest.raises(UnknownMeter):
            submit(app, session, keys, keys.payload() | {"meter_serial": "M-404"})
        assert count_readings(session) == 0
        failed = events(session, "meter_reading_validation_failed")
        assert [e.payload["error_code"] for e in failed] == [
            "invalid_signature",
            "forbidden",
            "unknown_meter",
        ]
        assert {e.user_id for e in failed} == {None}
        assert {e.payload["meter_serial"] for e in failed} == {"M-1"}


def test_a_suspended_meter_is_refused(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1", suspended=True)
        with pytest.raises(MeterSuspended) as caught:
            submit(app, session, keys, keys.payload())
        assert caught.value.code == "meter_suspended"
        assert count_readings(session) == 0


def test_admin_overrides_apply_to_the_next_reading(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        update_settings(session, app.settings.tokenization, {"max_reading_kwh": "5"}, by="t")
        with pytest.raises(KwhOutOfRange):
            submit(app, session, keys, keys.payload(kwh="5.000001", at=AT))
        update_settings(session, app.settings.tokenization, {"review_threshold_kwh": "1"}, by="t")
        assert submit(app, session, keys, keys.payload(kwh="5", at=AT)).reading.status == "review"


def _racing_insert(keys: MeterKeys, conn) -> None:
    conn.execute(
        insert(MeterReading).values(
            meter_id=keys.meter.id,
            user_id=keys.meter.owner_id,
            kwh_micro=7_000_000,
            reading_timestamp=AT,
            submitted_at=NOW,
            status="pending",
            meter_signature="other",
            attempts=0,
        )
    )


def _before_our_insert(app: App, action) -> list[bool]:
    fired: list[bool] = []

    def hook(conn, cursor, statement, parameters, context, executemany):
        if not fired and statement.startswith("INSERT INTO meter_readings"):
            fired.append(True)
            action(conn)

    event.listen(app.engine, "before_cursor_execute", hook)
    return fired


def _batch(app: App, session: Session, keys: MeterKeys, items: list):
    return accept_batch(session, meter_identity(session, keys.meter), items, app.config(), now=NOW)


def test_a_failed_insert_takes_its_event_with_it(app: App) -> None:
    """A conflicting row appears inside our transaction just before the batch INSERT:
    the UNIQUE violation rolls back the attempt (its events with it, and the intruder);
    the retry stores ours, each with exactly one event."""
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        items = [keys.payload(at=AT), keys.payload(at=AT + timedelta(minutes=20))]
        fired = _before_our_insert(app, lambda conn: _racing_insert(keys, conn))
        outcome = _batch(app, session, keys, items)
        assert fired and [r.status for r in outcome.results] == ["accepted", "accepted"]
        assert count_readings(session) == 2
        received = events(session, "meter_reading_received")
        assert sorted(e.payload["reading_id"] for e in received) == sorted(
            r.id for r in outcome.results
        )


def _pg_only(app: App) -> None:
    if app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: no other connection can win the race")


def _other_writer(app: App, keys: MeterKeys):
    def write(_conn) -> None:
        with app.engine.begin() as other:
            _racing_insert(keys, other)

    return write


@pytest.mark.postgres
def test_losing_a_race_to_another_connection_is_a_duplicate(app: App) -> None:
    _pg_only(app)
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        fired = _before_our_insert(app, _other_writer(app, keys))
        with pytest.raises(DuplicateReading):
            submit(app, session, keys, keys.payload(kwh="1.5", at=AT))
        assert fired and count_readings(session) == 1
        assert events(session, "meter_reading_received") == []


@pytest.mark.postgres
def test_a_batch_losing_a_race_is_retried_and_judged_again(app: App) -> None:
    """Another connection commits a reading at the same instant after our duplicate
    check: our INSERT violates UNIQUE, the attempt rolls back, the retry sees the
    winner and reports that item as a duplicate, the other as accepted."""
    _pg_only(app)
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        items = [keys.payload(at=AT), keys.payload(at=AT + timedelta(minutes=20))]
        fired = _before_our_insert(app, _other_writer(app, keys))
        outcome = _batch(app, session, keys, items)
        assert fired
        assert [(r.status, r.error.code if r.error else None) for r in outcome.results] == [
            ("duplicate", "duplicate_reading"),
            ("accepted", None),
        ]
        assert count_readings(session) == 2
        [received] = events(session, "meter_reading_received")
        assert received.payload["reading_id"] == outcome.results[1].id
