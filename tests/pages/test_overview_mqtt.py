"""The Overview's one line about the MQTT bridge, from its heartbeat row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.ingest_health import record_heartbeat
from tests.factories import NOW
from tests.pages.conftest import Dashboard


def captions(dashboard: Dashboard) -> list[str]:
    at = dashboard.open("root", "overview")
    assert not at.exception, at.exception
    return [caption.value for caption in at.caption]


def test_the_overview_says_whether_the_bridge_is_connected(dashboard: Dashboard) -> None:
    assert "MQTT bridge: not running (no heartbeat yet)" in captions(dashboard)
    with dashboard.app.sessions() as session:
        record_heartbeat(
            session,
            name="gridtokenx-ingest",
            broker="mqtt://127.0.0.1:1883",
            connected=True,
            messages_per_sec=Decimal("42.5"),
            counters={"messages": 10},
            started_at=NOW - timedelta(hours=1),
            last_message_at=NOW - timedelta(seconds=3),
            now=NOW - timedelta(seconds=1),
        )
    assert "MQTT bridge: connected · 42.5 messages/s · last message 3 s ago" in captions(dashboard)
