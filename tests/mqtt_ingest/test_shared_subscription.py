"""Two bridges on one MQTT shared subscription ($share/<group>/...) against Mosquitto.

The broker hands each message to one bridge of the group; the database, not the
broker, keeps readings exactly once. A stream of readings from many meters goes in
(every meter's readings spread over both bridges), then part of it again (a meter
resending what it already sent): every reading is stored once, answered `accepted`
once, and each resend answered `duplicate` with the stored id, whichever bridge took
which copy.
"""

from __future__ import annotations

import json
import queue
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import paho.mqtt.client as mqtt
from sqlalchemy import func, select

from core.bootstrap import App
from core.db.models import Meter, MeterReading
from core.db.types import utcnow
from mqtt_ingest.topics import Topics
from tests.factories import make_meter, rfc3339
from tests.support.mqtt import FleetClient, RunningBridge

METERS, PER_METER = 12, 25
READINGS = METERS * PER_METER
RESENT = 60  # the first RESENT readings of the stream, published again


def test_two_bridges_on_a_shared_subscription_store_and_ack_each_reading_once(
    app: App, mosquitto: str, topics: Topics
) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(hours=12)
    stream: list[tuple[str, str, bytes, int]] = []  # serial, timestamp, payload, micro-kWh
    with app.sessions() as session:
        keys = [make_meter(session, serial=f"SHARE-{m:02d}") for m in range(METERS)]
    for n in range(PER_METER):
        at = start + timedelta(minutes=16 * n)  # beyond the 15-minute duplicate window
        for m, meter in enumerate(keys):
            micro = 1_000 + 7_919 * m + 104_729 * n  # the test's own amounts
            body = meter.payload(kwh=Decimal(micro).scaleb(-6), at=at)
            stream.append((meter.serial, rfc3339(at), json.dumps(body).encode(), micro))

    meters = FleetClient(mosquitto, topics, protocol=mqtt.MQTTv5)

    group = f"share-{uuid.uuid4().hex[:8]}"
    shared = Topics(topics.prefix, share_group=group)
    assert shared.subscriptions == [f"$share/{group}/{f}" for f in topics.filters]
    bridges = [
        RunningBridge(app, mosquitto, shared, f"bridge-{n}-{uuid.uuid4().hex[:8]}").start()
        for n in (1, 2)
    ]
    answered: dict[tuple[str, str], list[dict]] = {}

    def collect(expected: int) -> None:
        while sum(len(replies) for replies in answered.values()) < expected:
            serial, ack = meters.acks.get(timeout=60)
            answered.setdefault((serial, ack["reading_timestamp"]), []).append(ack)

    try:
        for serial, _stamp, payload, _micro in stream:
            meters.publish(serial, payload)
        collect(READINGS)
        for serial, _stamp, payload, _micro in stream[:RESENT]:
            meters.publish(serial, payload).wait_for_publish(10)
        collect(READINGS + RESENT)
    finally:
        for bridge in bridges:
            bridge.close()
    # Nothing more comes: no reading was answered twice by the two bridges.
    try:
        while True:
            serial, ack = meters.acks.get(timeout=1.0)
            answered.setdefault((serial, ack["reading_timestamp"]), []).append(ack)
    except queue.Empty:
        pass
    finally:
        meters.close()

    # Both bridges took a share of the stream (Mosquitto hands the group's messages round).
    taken = [bridge.bridge.counters["messages"] for bridge in bridges]
    assert all(count > 0 for count in taken), taken
    assert sum(taken) == READINGS + RESENT
    assert len(answered) == READINGS
    resent = {(serial, stamp) for serial, stamp, _p, _m in stream[:RESENT]}
    for key, replies in answered.items():
        statuses = [reply["status"] for reply in replies]
        if key in resent:
            assert statuses == ["accepted", "duplicate"], (key, replies)
            assert replies[0]["id"] == replies[1]["id"]
        else:
            assert statuses == ["accepted"], (key, replies)
    with app.sessions() as session:
        rows = session.execute(
            select(
                Meter.serial,
                MeterReading.reading_timestamp,
                MeterReading.kwh_micro,
                MeterReading.id,
            ).join(Meter, Meter.id == MeterReading.meter_id)
        ).all()
        assert session.scalar(select(func.count()).select_from(MeterReading)) == READINGS
    stored = {(serial, rfc3339(at)): (micro, reading_id) for serial, at, micro, reading_id in rows}
    assert {key: micro for key, (micro, _id) in stored.items()} == {
        (serial, stamp): micro for serial, stamp, _p, micro in stream
    }
    accepted_ids = Counter(replies[0]["id"] for replies in answered.values())
    assert accepted_ids == Counter(reading_id for _micro, reading_id in stored.values())
