"""The database goes away under the bridge: nothing is acknowledged (no ack, no PUBACK) until
the reading is committed, and once the database is back the waiting message is accepted."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from core.bootstrap import App, bootstrap
from core.db.models import MeterReading
from core.db.types import utcnow
from tests.factories import make_meter
from tests.support.localnet import wait_for
from tests.support.proxy import FaultyProxy


def stored(app: App) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(MeterReading)) or 0


@pytest.mark.postgres
def test_a_reading_waits_at_the_broker_while_the_database_is_down(
    make_settings, pg_url, start_bridge, meter_client, caplog
) -> None:
    url = make_url(pg_url)
    proxy = FaultyProxy(url.host or "127.0.0.1", url.port or 5432).start()
    direct = bootstrap(make_settings(DATABASE_URL=pg_url))
    proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxied = bootstrap(make_settings(DATABASE_URL=proxied_url))
    try:
        with direct.sessions() as session:
            keys = make_meter(session, serial="OUT-1")
        start_bridge(proxied)
        meter = meter_client("OUT-1")
        reading = keys.payload(at=utcnow().replace(microsecond=0) - timedelta(hours=1))
        with caplog.at_level(logging.WARNING, logger="mqtt_ingest"), proxy.refused():
            meter.publish(reading)
            wait_for(
                lambda: any("nothing acknowledged" in r.getMessage() for r in caplog.records),
                timeout=30,
                what="the bridge to meet the outage",
            )
            assert meter.acks.empty() and stored(direct) == 0
        ack = meter.next_ack(timeout=30)  # the same message, accepted once the database is back
        assert (ack["status"], ack["reading_timestamp"]) == (
            "accepted",
            reading["reading_timestamp"],
        )
        assert stored(direct) == 1
    finally:
        proxied.close()
        direct.close()
        proxy.stop()
