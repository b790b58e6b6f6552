"""Several meters' readings in one unit of work: judged as batches are, one commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core.bootstrap import App
from core.db.models import Event, MeterReading, MeterStatus
from core.readings import (
    BatchOutcome,
    MeterSuspended,
    Part,
    PayloadTooLarge,
    accept_together,
    meters_by_serial,
)
from tests.factories import NOW, make_meter

AT = NOW - timedelta(hours=2)


def test_parts_of_many_meters_share_one_commit_and_keep_their_own_answers(app: App) -> None:
    with app.sessions() as session:
        a = make_meter(session, serial="T-A")
        b = make_meter(session, serial="T-B")
        c = make_meter(session, serial="T-C")
        c.meter.status = MeterStatus.SUSPENDED
        session.commit()
        meters = meters_by_serial(session, ["T-A", "T-B", "T-C", "T-NONE"])
        assert sorted(meters) == ["T-A", "T-B", "T-C"]
        forged = {**b.payload(at=AT), "kwh_amount": "7"}
        parts = [
            Part(meters["T-A"], [a.payload(kwh="1.25", at=AT)], in_batch=False),
            Part(meters["T-B"], [b.payload(kwh="0.5", at=AT - timedelta(hours=1)), forged]),
            Part(meters["T-C"], [c.payload(at=AT)]),
            Part(meters["T-A"], [], refusal=PayloadTooLarge("too big")),
            # Another meter's reading on A's door: refused, nothing stored.
            Part(meters["T-A"], [b.payload(at=AT + timedelta(hours=1))], in_batch=False),
        ]
        answers = accept_together(session, parts, app.config(), now=NOW)
        first, second, third, fourth, fifth = answers
        assert isinstance(first, BatchOutcome) and first.results[0].status == "accepted"
        assert isinstance(second, BatchOutcome)
        assert [(r.status, r.error.code if r.error else None) for r in second.results] == [
            ("accepted", None),
            ("rejected", "invalid_signature"),
        ]
        assert isinstance(third, MeterSuspended)
        assert isinstance(fourth, PayloadTooLarge)
        assert isinstance(fifth, BatchOutcome)
        assert fifth.results[0].error is not None and fifth.results[0].error.code == "forbidden"
        stored = session.execute(
            select(MeterReading.meter_id, MeterReading.kwh_micro).order_by(MeterReading.id)
        ).all()
        assert sorted(stored) == sorted([(a.meter.id, 1_250_000), (b.meter.id, 500_000)])
        failed = session.scalars(
            select(Event.payload["error_code"].as_string()).where(
                Event.type == "meter_reading_validation_failed"
            )
        ).all()
        assert sorted(failed) == sorted(
            ["invalid_signature", "meter_suspended", "payload_too_large", "forbidden"]
        )

        # The same parts again: every stored reading is answered as the duplicate it is.
        again = accept_together(session, parts[:2], app.config(), now=NOW)
        assert [r.status for o in again for r in o.results] == [  # type: ignore[union-attr]
            "duplicate",
            "duplicate",
            "rejected",
        ]
        ids = [r.id for o in again for r in o.results][:2]  # type: ignore[union-attr]
        assert ids == [first.results[0].id, second.results[0].id]
        assert session.scalar(select(func.count()).select_from(MeterReading)) == 2
