"""How many MQTT bridges `make run` starts, and how they share the readings."""

from __future__ import annotations

from launcher.__main__ import bridge_services
from mqtt_ingest.topics import Topics


def test_one_bridge_by_default_on_a_plain_subscription(make_settings) -> None:
    [bridge] = bridge_services(make_settings(MQTT_URL="mqtt://127.0.0.1:1883"))
    assert bridge.name == "mqtt" and bridge.env == {}
    assert Topics().subscriptions == Topics().filters


def test_several_bridges_each_with_its_own_session_in_one_share_group(make_settings) -> None:
    settings = make_settings(MQTT_URL="mqtt://127.0.0.1:1883", MQTT_BRIDGES="3")
    bridges = bridge_services(settings)
    assert [b.name for b in bridges] == ["mqtt-1", "mqtt-2", "mqtt-3"]
    assert [b.env for b in bridges] == [
        {"MQTT_CLIENT_ID": f"gridtokenx-ingest-{n}", "MQTT_SHARE_GROUP": "gridtokenx-ingest"}
        for n in (1, 2, 3)
    ]
    named = make_settings(
        MQTT_URL="mqtt://127.0.0.1:1883", MQTT_BRIDGES="2", MQTT_SHARE_GROUP="ingest"
    )
    assert {b.env["MQTT_SHARE_GROUP"] for b in bridge_services(named)} == {"ingest"}
    assert Topics("p/", "ingest").subscriptions == [
        "$share/ingest/p/gridtokenx/meters/+/readings",
        "$share/ingest/p//meter/+/reading",
    ]


def test_the_embedded_broker_gets_one_bridge(make_settings) -> None:
    # amqtt has no shared subscriptions: several bridges would each take every reading.
    [bridge] = bridge_services(make_settings(MQTT_BRIDGES="4"))
    assert bridge.name == "mqtt"
