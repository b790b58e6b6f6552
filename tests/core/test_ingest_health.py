"""The bridge's heartbeat: written by the bridge, read as connected, disconnected or stopped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.bootstrap import App
from core.ingest_health import STALE_AFTER, bridge_health, record_heartbeat, summary_line
from tests.factories import NOW


def test_a_heartbeat_is_one_row_per_bridge_and_goes_stale(app: App) -> None:
    with app.sessions() as session:
        for at, connected in ((NOW - timedelta(seconds=30), True), (NOW, False)):
            record_heartbeat(
                session,
                name="b1",
                broker="mqtt://h:1883",
                connected=connected,
                messages_per_sec=Decimal("1.5"),
                counters={"messages": 2, "rejected:invalid_format": 1},
                started_at=NOW - timedelta(hours=1),
                last_message_at=None,
                now=at,
            )
        [bridge] = bridge_health(session, NOW)
        assert (bridge.status, bridge.counters) == (
            "disconnected",
            {"messages": 2, "rejected:invalid_format": 1},
        )
        assert summary_line([bridge], NOW) == (
            "MQTT bridge: disconnected · 1.5 messages/s · no message yet"
        )
        [stale] = bridge_health(session, NOW + STALE_AFTER + timedelta(seconds=1))
        assert stale.status == "stopped"
        assert summary_line([stale], NOW + STALE_AFTER + timedelta(seconds=1)).startswith(
            "MQTT bridge: stopped · no message yet · last heartbeat"
        )
