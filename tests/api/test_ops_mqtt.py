"""The MQTT bridge's health and counters in /health and /metrics, from its heartbeat row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.db.types import utcnow
from core.ingest_health import STALE_AFTER, record_heartbeat


def beat(session: Session, *, connected: bool, at, counters: dict[str, int]) -> None:
    record_heartbeat(
        session,
        name="gridtokenx-ingest",
        broker="mqtts://bridge@broker.example:8883",
        connected=connected,
        messages_per_sec=Decimal("12.5"),
        counters=counters,
        started_at=at - timedelta(minutes=5),
        last_message_at=at - timedelta(seconds=1),
        now=at,
    )


def test_health_shows_the_bridge_and_its_staleness(client: TestClient, session: Session) -> None:
    now = utcnow()
    beat(session, connected=True, at=now, counters={"messages": 3, "accepted": 3})
    mqtt = client.get("/health").json()["mqtt"]
    assert (mqtt["status"], mqtt["broker"], mqtt["messages_per_sec"]) == (
        "connected",
        "mqtts://bridge@broker.example:8883",
        "12.5",
    )
    beat(session, connected=False, at=now, counters={"messages": 3, "accepted": 3})
    assert client.get("/health").json()["mqtt"]["status"] == "disconnected"
    beat(session, connected=True, at=now - STALE_AFTER - timedelta(seconds=1), counters={})
    body = client.get("/health").json()
    # A stopped bridge does not fail /health: the HTTP doors still accept readings.
    assert body["mqtt"]["status"] == "stopped" and body["status"] != "unavailable"


def test_metrics_carry_the_bridge_counters_per_outcome(
    client: TestClient, session: Session
) -> None:
    counters = {
        "messages": 7,
        "accepted": 4,
        "duplicate": 1,
        "rejected:invalid_signature": 1,
        "rejected:retained_message": 1,
    }
    beat(session, connected=True, at=utcnow(), counters=counters)
    text = client.get("/metrics").text
    for line in (
        'gridtokenx_mqtt_readings_total{bridge="gridtokenx-ingest",code="",outcome="accepted"} 4.0',
        'gridtokenx_mqtt_readings_total{bridge="gridtokenx-ingest",code="",'
        'outcome="duplicate"} 1.0',
        'gridtokenx_mqtt_readings_total{bridge="gridtokenx-ingest",code="invalid_signature",'
        'outcome="rejected"} 1.0',
        'gridtokenx_mqtt_readings_total{bridge="gridtokenx-ingest",code="retained_message",'
        'outcome="rejected"} 1.0',
        'gridtokenx_mqtt_messages_total{bridge="gridtokenx-ingest"} 7.0',
        'gridtokenx_mqtt_connected{bridge="gridtokenx-ingest"} 1.0',
    ):
        assert line in text, line
