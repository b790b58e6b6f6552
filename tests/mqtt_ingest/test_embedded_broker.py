"""The broker `make run` starts without MQTT_URL (amqtt, MQTT 3.1.1): the bridge and a meter
speak 3.1.1 through it, with the persistent session and manual PUBACK.

Not tested here, because amqtt does not do it: redelivery of a message the bridge did
not PUBACK. amqtt 0.12 waits 5 s for a PUBACK and then drops the message from the
session (mqtt/protocol/handler.py), so the embedded broker is a demo stand-in;
at-least-once across a bridge crash needs a real broker (Mosquitto: test_bridge.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from core.bootstrap import App
from core.db.types import utcnow
from launcher.__main__ import free_port_from
from mqtt_ingest.bridge import Bridge
from mqtt_ingest.connection import broker_address
from tests.factories import make_meter
from tests.support.localnet import wait_for
from tests.support.mqtt import MeterClient, RunningBridge
from tests.support.processes import REPO_ROOT


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[str]:
    port = free_port_from(20_000 + uuid.uuid4().int % 20_000)
    log = (tmp_path / "broker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mqtt_ingest.embedded_broker", "--port", str(port)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _accepts(port), timeout=30, what="the embedded broker")
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def test_the_bridge_on_the_embedded_broker(app: App, embedded_broker: str, topics) -> None:
    with app.sessions() as session:
        keys = make_meter(session, serial="EMB-1")
    client_id = f"bridge-{uuid.uuid4().hex[:8]}"

    def bridge() -> RunningBridge:
        running = RunningBridge(app, embedded_broker, topics, client_id)
        running.bridge = Bridge(
            app, broker_address(embedded_broker), client_id=client_id, topics=topics,
            protocol="3.1.1",
        )  # fmt: skip
        running.thread.__init__(target=running.bridge.run, args=(running.stop,), daemon=True)
        return running.start()

    running = bridge()
    meter = MeterClient(embedded_broker, topics, "EMB-1", protocol=mqtt.MQTTv311)
    try:
        reading = keys.payload(kwh="1.25", at=utcnow().replace(microsecond=0) - timedelta(hours=1))
        meter.publish(reading)
        accepted = meter.next_ack()
        assert accepted["status"] == "accepted"
        meter.publish(reading)
        assert meter.next_ack() == {**accepted, "status": "duplicate"}
        meter.publish(None, raw=b"{nope")
        assert meter.next_ack()["code"] == "invalid_format"
        assert running.bridge.counters["accepted"] == 1
        running.close()
    finally:
        meter.close()
