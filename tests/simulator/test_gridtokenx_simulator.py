"""`python -m simulator --protocol gridtokenx` against a real server: their form, one key."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from core.bootstrap import App
from core.db.models import Gateway, Meter, Role, TelemetrySample
from core.readings.rust_format import rust_f64_display
from simulator.client import ApiClient
from simulator.fleet import FleetStore, ensure_users
from simulator.gridtokenx import BRIDGE_METERS, BridgeFleet, kwh_text
from tests.api.server import serve
from tests.factories import DEFAULT_PASSWORD, NOW, make_user

CLOCK = NOW  # 12:00 UTC: night in Bangkok and Sydney


@pytest.fixture
def api_url(app: App) -> Iterator[str]:
    api = create_app(app, clock=lambda: CLOCK, config_ttl_secs=0, create_first_admin=False)
    with serve(api) as url:
        yield url


@pytest.mark.parametrize("value", [1.0, -0.75, 0.012345, -0.00001, 1e-6, 12.5])
def test_the_kwh_is_written_as_their_bridge_writes_it(value: float) -> None:
    assert kwh_text(value) == rust_f64_display(value)


def test_two_meters_tick_through_one_gateway(api_url: str, app: App, tmp_path) -> None:
    with app.sessions() as session:
        make_user(session, "root", role=Role.ADMIN)
    client = ApiClient(api_url)
    try:
        client.login("root", DEFAULT_PASSWORD)
        store = FleetStore(tmp_path)
        ensure_users(client, store.users())
        bridge = BridgeFleet(client, store)
        bridge.ensure()
        tick = timedelta(seconds=5)
        night = bridge.tick(CLOCK - timedelta(minutes=1), tick)
        day = bridge.tick(CLOCK - timedelta(hours=6), tick)  # 13:00 in Bangkok
        again = BridgeFleet(client, store)  # a restart reuses meters and the gateway key
        again.ensure()
        later = again.tick(CLOCK - timedelta(minutes=1) + tick, tick)
    finally:
        client.close()
    serials = [m.serial for m in BRIDGE_METERS]
    assert night == day == later == {serial: 202 for serial in serials}
    assert stat.S_IMODE((tmp_path / "simulator" / "gridtokenx.json").stat().st_mode) == 0o600
    with app.sessions() as session:
        assert _samples(session, serials[0]) == [(None, False), (None, True), (None, True)]
        assert [c is not None for c, _ in _samples(session, serials[1])] == [True] * 3
        gateways = session.scalars(select(Gateway.name)).all()
        encrypted = session.scalar(
            select(Meter.encryption_required).where(Meter.serial == serials[1])
        )
    assert gateways == ["SIM-HEADEND"] and encrypted is True


def _samples(session: Session, serial: str) -> list[tuple[int | None, bool]]:
    """(counter, net below zero) per sample, oldest first."""
    rows = session.execute(
        select(TelemetrySample.counter, TelemetrySample.net_micro)
        .join(Meter, Meter.id == TelemetrySample.meter_id)
        .where(Meter.serial == serial)
        .order_by(TelemetrySample.sample_timestamp)
    ).all()
    return [(counter, net < 0) for counter, net in rows]
