"""Meters that report over MQTT: publish to their readings topic, wait for their ack.

As a meter on a broker does it (docs/API.md "MQTT"): QoS 1 to
`gridtokenx/meters/{serial}/readings`, the answer on `gridtokenx/meters/{serial}/acks`.
Registration and the admin's calls still go through the HTTP API.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ACK_TIMEOUT_SECS = 10.0


class NoAck(Exception):
    """No ack within the timeout: the bridge is down or busy; the reading is sent again."""


class MqttMeters:
    def __init__(
        self, url: str, serials: list[str], *, protocol: str = "5", prefix: str = ""
    ) -> None:
        parts = urlsplit(url)
        self.prefix = prefix
        self.acks: dict[str, queue.Queue[dict[str, Any]]] = {s: queue.Queue() for s in serials}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"gridtokenx-sim-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
        )
        if parts.username:
            self.client.username_pw_set(
                unquote(parts.username), unquote(parts.password) if parts.password else None
            )
        if parts.scheme == "mqtts":
            self.client.tls_set()
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.connected = threading.Event()
        self.client.connect_async(
            parts.hostname or "127.0.0.1", parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        )
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        client.subscribe([(self._topic(serial, "acks"), 1) for serial in self.acks])
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        serial = message.topic.split("/")[-2]
        if serial in self.acks:
            self.acks[serial].put(json.loads(message.payload))

    def _topic(self, serial: str, leaf: str) -> str:
        return f"{self.prefix}gridtokenx/meters/{serial}/{leaf}"

    def wait_until_up(self, timeout: float = 60.0) -> bool:
        return self.connected.wait(timeout)

    def send(self, serial: str, body: dict[str, Any]) -> dict[str, Any]:
        """Publish one reading or a batch; its ack (NoAck when none comes in time)."""
        inbox = self.acks[serial]
        while not inbox.empty():  # a late ack of an earlier message
            inbox.get_nowait()
        info = self.client.publish(self._topic(serial, "readings"), json.dumps(body), qos=1)
        info.wait_for_publish(ACK_TIMEOUT_SECS)
        try:
            return inbox.get(timeout=ACK_TIMEOUT_SECS)
        except queue.Empty:
            raise NoAck(f"{serial}: no ack within {ACK_TIMEOUT_SECS:.0f} s") from None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
