"""`python -m simulator --transport mixed`: two meters publish over Mosquitto through the
bridge, two call the HTTP API; both land in the same table by the same rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.app import create_app
from core.bootstrap import App
from core.db.models import Meter, MeterReading, Role
from core.db.types import utcnow
from simulator.__main__ import MIXED_MQTT_SERIALS
from simulator.client import ApiClient
from simulator.fleet import FleetStore, ensure_meters, ensure_users
from simulator.mqtt_transport import MqttMeters
from simulator.runner import Simulator
from tests.api.server import serve
from tests.factories import DEFAULT_PASSWORD, make_user

# Yesterday 22:00 UTC: noon in Honolulu, evening in Lisbon; within the age limit.
CLOCK = (utcnow() - timedelta(days=1)).replace(hour=22, minute=0, second=0, microsecond=0)


@pytest.fixture
def api_url(app: App) -> Iterator[str]:
    with serve(create_app(app, config_ttl_secs=0, create_first_admin=False)) as url:
        yield url


def test_mixed_transport_sends_two_meters_over_mqtt(
    app: App, api_url: str, tmp_path: Path, start_bridge, mosquitto, topics
) -> None:
    with app.sessions() as session:
        make_user(session, "root", role=Role.ADMIN)
    bridge = start_bridge()
    client = ApiClient(api_url)
    client.login("root", DEFAULT_PASSWORD)
    store = FleetStore(tmp_path)
    ensure_users(client, store.users())
    fleet = ensure_meters(client, store)
    over_mqtt_serials = [m.serial for m in fleet if m.serial in MIXED_MQTT_SERIALS]
    mqtt = MqttMeters(mosquitto, over_mqtt_serials, prefix=topics.prefix)
    try:
        assert mqtt.wait_until_up(10)
        window = int(client.config()["duplicate_window_secs"])
        simulator = Simulator(
            client,
            store,
            fleet,
            window_secs=window,
            interval_secs=5,
            clock=lambda: CLOCK,
            mqtt=mqtt,
        )
        backfill = simulator.backfill(6)
    finally:
        mqtt.close()
        client.close()
    assert backfill.accepted > 0 and backfill.rejected == 0
    with app.sessions() as session:
        by_meter = dict(
            session.execute(
                select(Meter.serial, func.count(MeterReading.id))
                .join(MeterReading, MeterReading.meter_id == Meter.id)
                .group_by(Meter.serial)
            ).all()
        )
    over_mqtt = sum(count for serial, count in by_meter.items() if serial in over_mqtt_serials)
    assert over_mqtt > 0 and bridge.bridge.counters["accepted"] == over_mqtt
    assert sum(by_meter.values()) == backfill.accepted
