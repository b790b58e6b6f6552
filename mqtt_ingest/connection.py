"""The broker connection: paho-mqtt configured for at-least-once delivery made durable.

Why paho-mqtt (2.x) and not aiomqtt: the bridge must send each PUBACK itself, after
the commit (paho's `manual_ack=True` and `Client.ack(mid, qos)`), and its work is a
blocking database transaction per group of messages, which fits a thread fed by
paho's network thread better than an event loop. aiomqtt wraps paho and exposes
neither as directly. Username/password come from the URL, TLS from `mqtts://`
(paho's own `tls_set`, the system's CAs or MQTT_CAFILE).

Persistent session: a fixed client id and clean_session false (3.1.1) or clean_start
false with a session expiry (5), so messages published while the bridge is down wait
at the broker. MQTT 5 also gives retain-as-published (a live retained publication is
recognised and refused, not only a stored one replayed on subscribe) and a receive
maximum above Mosquitto's 3.1.1 default of 20 messages in flight.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

SESSION_EXPIRY_SECS = 7 * 24 * 3600  # a week of outage before the broker drops the session
RECEIVE_MAXIMUM = 2000  # unacknowledged messages the broker may send us at once
KEEPALIVE_SECS = 30


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @property
    def display(self) -> str:
        """The URL without its password (for logs, /health)."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def broker_address(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def new_client(
    address: BrokerAddress,
    client_id: str,
    *,
    protocol: str = "5",
    cafile: Path | None = None,
    manual_ack: bool = True,
    persistent: bool = True,
) -> mqtt.Client:
    """A configured client, not yet connected (`connect` starts it)."""
    v5 = protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=str(cafile) if cafile else None, cert_reqs=ssl.CERT_REQUIRED)
    client.max_inflight_messages_set(1000)  # our acks in flight to the broker
    client.max_queued_messages_set(0)  # never drop an ack while reconnecting
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect(client: mqtt.Client, address: BrokerAddress, *, persistent: bool = True) -> None:
    """Connect in the background and keep reconnecting (paho's network thread)."""
    if client.protocol == mqtt.MQTTv5:
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECS
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect_async(
            address.host,
            address.port,
            KEEPALIVE_SECS,
            clean_start=not persistent,
            properties=properties,
        )
    else:
        client.connect_async(address.host, address.port, KEEPALIVE_SECS)
    client.loop_start()


def subscribe_readings(
    client: mqtt.Client, topic_filters: list[str], *, session_present: bool
) -> None:
    if client.protocol == mqtt.MQTTv5:
        # Retained messages stored at the broker come once, to a new subscription only;
        # every retained message keeps its flag so it can be refused.
        options = SubscribeOptions(
            qos=1,
            retainAsPublished=True,
            retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB,
        )
        client.subscribe([(topic_filter, options) for topic_filter in topic_filters])
    elif not session_present:
        client.subscribe([(topic_filter, 1) for topic_filter in topic_filters])


def correlation_of(message: mqtt.MQTTMessage) -> Properties | None:
    """Publish properties echoing an MQTT 5 message's correlation data, if it had any."""
    data = getattr(getattr(message, "properties", None), "CorrelationData", None)
    if not data:
        return None
    properties = Properties(PacketTypes.PUBLISH)
    properties.CorrelationData = data
    return properties
