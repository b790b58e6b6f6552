"""Batches: partial acceptance in one transaction, per-item results, bounded events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, MeterReading
from core.readings import (
    MAX_REJECTION_EVENTS_PER_REQUEST,
    MeterSuspended,
    PayloadTooLarge,
    accept_batch,
    meter_identity,
)
from core.settings_store import update_settings
from tests.factories import NOW, MeterKeys, make_meter

AT = NOW - timedelta(hours=2)


def batch(app: App, session: Session, keys: MeterKeys, items: list):
    return accept_batch(session, meter_identity(session, keys.meter), items, app.config(), now=NOW)


def count(session: Session, model=MeterReading, **where) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    return session.scalar(statement) or 0


def test_a_batch_stores_what_is_valid_and_reports_each_item(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        stored = batch(app, session, keys, [keys.payload(at=AT - timedelta(hours=1))]).results[0]
        items = [
            keys.payload(kwh="1.25", at=AT),  # 0 accepted
            {**keys.payload(at=AT + timedelta(minutes=15)), "kwh_amount": "9"},  # 1 forged
            keys.payload(kwh="0.29", at=AT + timedelta(minutes=30)),  # 2 accepted
            keys.payload(kwh="2", at=AT + timedelta(minutes=35)),  # 3 in the window of 2
            keys.payload(at=AT - timedelta(hours=1)),  # 4 resend of the stored one
            "garbage",  # 5
            keys.payload(kwh="0.29", at=AT + timedelta(minutes=30)),  # 6 resend of 2
            {**keys.payload(at=AT + timedelta(hours=1)), "kwh_amount": "1.0000001"},  # 7
        ]
        outcome = batch(app, session, keys, items)
        summary = [(r.index, r.status, r.error.code if r.error else None) for r in outcome.results]
        assert summary == [
            (0, "accepted", None),
            (1, "rejected", "invalid_signature"),
            (2, "accepted", None),
            (3, "duplicate", "duplicate_reading"),
            (4, "duplicate", None),
            (5, "rejected", "invalid_format"),
            (6, "duplicate", None),
            (7, "rejected", "too_many_decimals"),
        ]
        ids = {r.index: r.id for r in outcome.results}
        assert ids[3] == ids[6] == ids[2] and ids[4] == stored.id
        assert (outcome.count("accepted"), outcome.count("duplicate")) == (2, 3)
        assert outcome.count("rejected") == 3
        assert count(session) == 3
        amounts = session.scalars(select(MeterReading.kwh_micro).order_by(MeterReading.id)).all()
        assert amounts == [1_500_000, 1_250_000, 290_000]
        assert count(session, Event, type="meter_reading_received") == 3
        failed = session.scalars(
            select(Event).where(Event.type == "meter_reading_validation_failed").order_by(Event.id)
        ).all()
        assert [(e.payload["batch_index"], e.payload["error_code"]) for e in failed] == [
            (1, "invalid_signature"),
            (3, "duplicate_reading"),
            (5, "invalid_format"),
            (7, "too_many_decimals"),
        ]


def test_a_batch_of_garbage_writes_a_bounded_number_of_events(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        outcome = batch(app, session, keys, [{"nope": i} for i in range(100)])
        assert outcome.count("rejected") == 100
        failed = session.scalars(select(Event).order_by(Event.id)).all()[1:]  # after registration
        assert len(failed) == MAX_REJECTION_EVENTS_PER_REQUEST
        assert failed[-1].payload["more_rejections"] == 100 - MAX_REJECTION_EVENTS_PER_REQUEST


def test_too_many_items_or_a_suspended_meter_refuse_the_whole_batch(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        items = [keys.payload(at=AT - timedelta(minutes=15 * i)) for i in range(1001)]
        with pytest.raises(PayloadTooLarge):
            batch(app, session, keys, items)
        suspended = make_meter(session, serial="M-2", suspended=True)
        with pytest.raises(MeterSuspended):
            batch(app, session, suspended, [suspended.payload(at=AT)])
        assert count(session) == 0
        assert count(session, Event, type="meter_reading_validation_failed") == 2


def test_a_thousand_readings_in_one_batch(app: App) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="M-1")
        update_settings(session, app.settings.tokenization, {"duplicate_window_secs": 600}, by="t")
        items = [keys.payload(kwh="0.5", at=NOW - timedelta(minutes=10 * i)) for i in range(1000)]
        outcome = batch(app, session, keys, items)
        assert outcome.count("accepted") == 1000
        assert count(session) == 1000
        total = session.scalar(select(func.sum(MeterReading.kwh_micro)))
        assert total == 500_000_000
