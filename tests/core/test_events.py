"""The event log: exact payloads, ids in order, one notification per statement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from core.db.models import Event
from core.events import publish, publish_many, to_message


def test_many_events_come_back_with_their_own_ids_in_order(sessions) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with sessions() as session:
        written = publish_many(
            session,
            [
                ("mint_requested", {"n": index, "kwh": Decimal("1.500000")}, None)
                for index in range(40)
            ],
            at=at,
        )
        single = publish(session, "settings_changed", {"key": "batch_size"}, user_id=None, at=at)
        session.commit()
    assert [event.payload["n"] for event in written] == list(range(40))
    ids = [event.id for event in written]
    assert ids == sorted(ids) and single.id > ids[-1]
    with sessions() as session:
        stored = {row.id: row for row in session.scalars(select(Event))}
    for event in written:
        assert stored[event.id].payload == {"n": event.payload["n"], "kwh": "1.500000"}
        assert to_message(stored[event.id]) == to_message(event)
    assert to_message(single)["timestamp"] == "2026-11-20T12:00:00Z"


def test_payload_values_become_exact_json(sessions) -> None:
    with sessions() as session:
        event = publish(
            session,
            "tokens_minted",
            {
                "kwh_amount": Decimal("2.010000"),
                "at": datetime(2026, 1, 1, tzinfo=UTC),
                "reading_ids": (1, 2),
                "nested": {"x": Decimal("0.1")},
            },
        )
        session.commit()
    assert event.payload == {
        "kwh_amount": "2.010000",
        "at": "2026-01-01T00:00:00Z",
        "reading_ids": [1, 2],
        "nested": {"x": "0.1"},
    }
