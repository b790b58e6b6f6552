"""The bridge against the real Mosquitto: real meters publish, the bridge answers on their acks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.bootstrap import App, bootstrap
from core.db.models import Event, Meter, MeterReading, TelemetrySample
from core.db.types import utcnow
from core.meters import register_meter
from core.readings.shared_budget import reading_budget
from tests.factories import make_meter, make_user
from tests.gridtokenx import simulator as sim


def recent(minutes: int):
    return utcnow().replace(microsecond=0) - timedelta(minutes=minutes)


def stored(app: App) -> list[tuple[int, int]]:
    with app.sessions() as session:
        return list(
            session.execute(
                select(MeterReading.meter_id, MeterReading.kwh_micro).order_by(MeterReading.id)
            ).all()
        )


def test_a_reading_is_stored_and_its_resend_answered_as_the_duplicate(
    app: App, start_bridge, meter_client
) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="MQ-1")
    start_bridge()
    meter = meter_client("MQ-1")
    reading = keys.payload(kwh="2.010000", at=recent(30))
    meter.publish(reading)
    ack = meter.next_ack()
    assert ack["status"] == "accepted" and ack["reading_timestamp"] == reading["reading_timestamp"]
    meter.publish(reading)
    again = meter.next_ack()
    assert again == {**ack, "status": "duplicate"}
    assert stored(app) == [(keys.meter.id, 2_010_000)]
    with app.sessions() as session:
        received = session.scalars(
            select(Event.payload).where(Event.type == "meter_reading_received")
        ).all()
    assert [(e["reading_id"], e["meter_serial"], e["kwh_amount"]) for e in received] == [
        (ack["id"], "MQ-1", "2.010000")
    ]


def test_a_batch_message_is_answered_per_item(app: App, start_bridge, meter_client) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="MQ-B")
    start_bridge()
    meter = meter_client("MQ-B")
    items = [
        keys.payload(kwh="1.5", at=recent(60)),
        {**keys.payload(at=recent(40)), "kwh_amount": "3"},
    ]
    meter.publish({"readings": items})
    ack = meter.next_ack()
    assert (ack["status"], ack["accepted"], ack["duplicates"], ack["rejected"]) == (
        "batch",
        1,
        0,
        1,
    )
    assert [(r["index"], r["status"]) for r in ack["results"]] == [(0, "accepted"), (1, "rejected")]
    assert ack["results"][1]["error"]["code"] == "invalid_signature"
    assert stored(app) == [(keys.meter.id, 1_500_000)]


def test_bad_messages_each_get_their_ack_and_store_nothing(
    app: App, start_bridge, meter_client, topics
) -> None:
    with app.sessions() as session:
        mine = make_meter(session, serial="MQ-2")
        other = make_meter(session, serial="MQ-3")
    start_bridge()
    meter = meter_client("MQ-2")
    at = recent(20)
    cases = [
        (None, b"{not json", "invalid_format"),
        (None, b"[1, 2]", "invalid_format"),
        (None, b"\xff\xfe", "invalid_format"),
        (None, b"{" + b" " * (1024 * 1024) + b"}", "payload_too_large"),
        # Another meter's reading published on this meter's topic.
        (other.payload(at=at), None, "forbidden"),
        # This meter's serial, signed by another meter's key.
        ({**other.payload(at=at), "meter_serial": "MQ-2"}, None, "invalid_signature"),
        ({**mine.payload(at=at), "kwh_amount": "1.0000001"}, None, "too_many_decimals"),
        (mine.payload(kwh="500", at=at), None, "kwh_out_of_range"),
    ]
    for body, raw, code in cases:
        meter.publish(body, raw=raw)
        ack = meter.next_ack()
        assert (ack["status"], ack["code"]) == ("rejected", code), (body, raw)
    meter.publish(mine.payload(at=at), retain=True)
    assert meter.next_ack()["code"] == "retained_message"
    meter.publish(None, raw=b"", retain=True)  # clears the retained message at the broker
    assert meter.next_ack()["code"] == "retained_message"  # and is refused like any
    # A topic naming no meter: answered there, no event.
    stranger = meter_client("NO-SUCH-METER")
    stranger.publish(mine.payload(at=at))
    assert stranger.next_ack()["code"] == "unknown_meter"
    assert stored(app) == []
    with app.sessions() as session:
        codes = session.scalars(
            select(Event.payload["error_code"].as_string()).where(
                Event.type == "meter_reading_validation_failed"
            )
        ).all()
        assert session.scalar(select(func.count()).select_from(MeterReading)) == 0
    assert sorted(codes) == sorted([code for _b, _r, code in cases] + ["retained_message"] * 2)


def test_a_crash_between_commit_and_puback_redelivers_and_is_answered_duplicate(
    app: App, start_bridge, meter_client
) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="MQ-R")
    first = start_bridge()
    first.bridge.client.ack = lambda mid, qos: None  # committed, answered, never PUBACKed
    meter = meter_client("MQ-R")
    reading = keys.payload(kwh="0.750000", at=recent(10))
    meter.publish(reading)
    accepted = meter.next_ack()
    assert accepted["status"] == "accepted"
    first.close()  # the session stays at the broker with the message in flight
    second = start_bridge()  # the same client id resumes the session
    redelivered = meter.next_ack()
    assert redelivered == {**accepted, "status": "duplicate"}
    assert stored(app) == [(keys.meter.id, 750_000)]
    assert second.bridge.counters["duplicate"] == 1
    # Acknowledged now: a third bridge on the session is not sent it again; the next ack
    # is the next reading's (a redelivery would come first).
    second.close()
    start_bridge()
    later = keys.payload(kwh="1", at=recent(40))
    meter.publish(later)
    ack = meter.next_ack()
    assert (ack["status"], ack["reading_timestamp"]) == ("accepted", later["reading_timestamp"])
    assert len(stored(app)) == 2


def test_mqtt_spends_the_same_reading_budget_as_http(
    app: App, make_settings, database_url, start_bridge, meter_client
) -> None:
    limited = bootstrap(
        make_settings(
            DATABASE_URL=database_url, METER_RATE_LIMIT_PER_MINUTE="1", METER_RATE_LIMIT_BURST="2"
        )
    )
    try:
        with limited.sessions() as session:
            keys = make_meter(session, serial="MQ-L")
        start_bridge(limited)
        meter = meter_client("MQ-L")
        meter.publish({"readings": [keys.payload(at=recent(100)), keys.payload(at=recent(80))]})
        assert meter.next_ack()["accepted"] == 2
        meter.publish(keys.payload(at=recent(60)))
        ack = meter.next_ack()
        assert (ack["status"], ack["code"], ack["remaining"]) == ("rejected", "rate_limited", 0)
        assert ack["retry_after"] >= 1
        assert len(stored(limited)) == 2
    finally:
        limited.close()


def test_on_postgresql_what_the_api_spent_is_gone_for_mqtt_too(
    app: App, make_settings, database_url, start_bridge, meter_client
) -> None:
    """One budget per meter across doors: the API's spend (its own reading_budget over the
    same database) leaves the bridge nothing."""
    if not database_url.startswith("postgresql"):
        pytest.skip("on SQLite each process keeps its budget in memory (docs/API.md)")
    limited = bootstrap(
        make_settings(
            DATABASE_URL=database_url, METER_RATE_LIMIT_PER_MINUTE="1", METER_RATE_LIMIT_BURST="2"
        )
    )
    api_budget = reading_budget(database_url, 1, 2)
    try:
        with limited.sessions() as session:
            keys = make_meter(session, serial="MQ-S")
        api_budget.spend(keys.meter.id, 2)  # what two HTTP readings cost
        start_bridge(limited)
        meter = meter_client("MQ-S")
        meter.publish(keys.payload(at=recent(60)))
        ack = meter.next_ack()
        assert (ack["status"], ack["code"], ack["remaining"]) == ("rejected", "rate_limited", 0)
        assert stored(limited) == []
    finally:
        api_budget.close()
        limited.close()


def test_gridtokenx_samples_on_their_topic_enter_the_same_acceptance(
    app: App, start_bridge, meter_client, topics
) -> None:
    with app.sessions() as session:
        owner = make_user(session)
        register_meter(session, "GTX-M1", owner.username, sim.public_key_hex("GTX-M1"))
        register_meter(session, "GTX-M2", owner.username, sim.public_key_hex("GTX-M2"))
    start_bridge()
    meter = meter_client("GTX-M1")
    body = sim.plain("GTX-M1", generated=1.5, consumed=0.5, at=recent(30))
    their_topic = topics.gridtokenx_reading("GTX-M1")
    meter.publish(body, topic=their_topic)
    ack = meter.next_ack()
    assert ack["status"] == "accepted" and ack["reading_timestamp"] == body["payload"]["timestamp"]
    meter.publish(body["payload"], topic=their_topic)  # the payload alone: the topic's device
    assert meter.next_ack() == {**ack, "status": "duplicate"}
    # Another device's sample on this device's topic; this device's id, the other's key.
    other = sim.plain("GTX-M2", generated=2, consumed=0, at=recent(60))
    meter.publish(other, topic=their_topic)
    assert meter.next_ack()["code"] == "forbidden"
    meter.publish({**other, "device_id": "GTX-M1"}, topic=their_topic)
    assert meter.next_ack()["code"] == "invalid_signature"
    # A GridTokenX frame is a telemetry sample: stored, and settled by its interval.
    assert stored(app) == []
    with app.sessions() as session:
        samples = session.execute(
            select(TelemetrySample.id, TelemetrySample.meter_id, TelemetrySample.net_micro)
        ).all()
    assert samples == [(ack["id"], ack_meter_id(app, "GTX-M1"), 1_000_000)]


def ack_meter_id(app: App, serial: str) -> int:
    with app.sessions() as session:
        return session.scalar(select(Meter.id).where(Meter.serial == serial))
