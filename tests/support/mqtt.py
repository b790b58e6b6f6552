"""Real MQTT for tests: the Mosquitto broker, meters as real paho clients, a bridge in a thread.

Every test gets its own topic prefix and client ids, so parallel runs on one broker
never see each other's messages.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.bootstrap import App
from mqtt_ingest.bridge import Bridge
from mqtt_ingest.connection import broker_address
from mqtt_ingest.topics import Topics
from tests.support.localnet import wait_for

MOSQUITTO_URL = os.environ.get("TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def broker_reachable(url: str = MOSQUITTO_URL) -> bool:
    address = broker_address(url)
    try:
        with socket.create_connection((address.host, address.port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mosquitto() -> str:
    if not broker_reachable():
        message = f"Mosquitto at {MOSQUITTO_URL} is unreachable"
        if IN_CI:
            pytest.fail(f"{message}: under CI=true the MQTT tests must run", pytrace=False)
        pytest.skip(f"!!! SKIPPING MQTT TESTS: {message}. Start it (.ci/run does).")
    return MOSQUITTO_URL


@pytest.fixture
def topics() -> Topics:
    return Topics(f"test-{uuid.uuid4().hex[:12]}/")


class MeterClient:
    """A meter on the broker: publishes readings, collects the acks of its own topic."""

    def __init__(self, url: str, topics: Topics, serial: str, *, protocol: int = mqtt.MQTTv5):
        address = broker_address(url)
        self.topics, self.serial = topics, serial
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"meter-{uuid.uuid4().hex[:12]}",
            protocol=protocol,
        )
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        subscribed = threading.Event()
        self.client.on_message = lambda _c, _u, m: self.acks.put(json.loads(m.payload))
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.client.subscribe(topics.acks(serial), qos=1)
        assert subscribed.wait(10), "the broker did not confirm the ack subscription"

    def publish(
        self, body: Any, *, raw: bytes | None = None, retain: bool = False, topic: str | None = None
    ) -> None:
        payload = raw if raw is not None else json.dumps(body).encode()
        info = self.client.publish(
            topic or self.topics.readings(self.serial), payload, qos=1, retain=retain
        )
        info.wait_for_publish(10)

    def next_ack(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            return self.acks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no ack for meter {self.serial} within {timeout}s") from None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class FleetClient:
    """Many meters on one connection (a head-end's view): publishes any meter's readings,
    collects every meter's acks as (serial, ack), in arrival order."""

    def __init__(
        self, url: str, topics: Topics, *, inflight: int = 100, protocol: int = mqtt.MQTTv311
    ) -> None:
        address = broker_address(url)
        self.topics = topics
        self.acks: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fleet-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)  # unbounded: a stream is queued, never dropped
        self.client.on_message = lambda _c, _u, m: self.acks.put(
            (m.topic.split("/")[-2], json.loads(m.payload))
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.client.subscribe(topics.acks("+"), qos=1)
        assert subscribed.wait(10), "the broker did not confirm the ack subscription"

    def publish(self, serial: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(self.topics.readings(serial), payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RunningBridge:
    """The bridge of `python -m mqtt_ingest`, run in a thread of the test."""

    def __init__(self, app: App, url: str, topics: Topics, client_id: str) -> None:
        self.bridge = Bridge(app, broker_address(url), client_id=client_id, topics=topics)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.bridge.run, args=(self.stop,), daemon=True)

    def start(self) -> RunningBridge:
        self.thread.start()
        wait_for(self.bridge.connected.is_set, timeout=10, what="the bridge to connect")
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)


@pytest.fixture
def start_bridge(request: pytest.FixtureRequest, mosquitto: str, topics: Topics) -> Iterator[Any]:
    """Start a bridge in a thread: on the test's `app` (asked for only when no app is given,
    so a test on its own database is not run once per backend)."""
    started: list[RunningBridge] = []
    client_id = f"bridge-{uuid.uuid4().hex[:12]}"

    def start(bridge_app: App | None = None) -> RunningBridge:
        bridge_app = bridge_app or request.getfixturevalue("app")
        bridge = RunningBridge(bridge_app, mosquitto, topics, client_id).start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.close()


@pytest.fixture
def meter_client(mosquitto: str, topics: Topics) -> Iterator[Any]:
    clients: list[MeterClient] = []

    def connect(serial: str, **options: Any) -> MeterClient:
        client = MeterClient(mosquitto, topics, serial, **options)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
