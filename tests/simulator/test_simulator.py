"""The simulator against a real uvicorn server: fleet setup, backfill, a live cycle, reuse."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from core.bootstrap import App
from core.db.models import Meter, MeterReading, Role, User
from core.readings.rules import parse_timestamp
from core.signatures import reading_message, verify_reading_signature
from core.units import parse_kwh
from simulator.client import ApiClient
from simulator.fleet import DEMO_METERS, FleetStore, ensure_meters, ensure_users
from simulator.runner import Simulator, signed_reading
from tests.api.server import serve
from tests.factories import DEFAULT_PASSWORD, NOW, make_user

# 12:00 UTC: midday in Lisbon, so at least that site exports.
CLOCK = NOW


@pytest.fixture
def session(app: App) -> Iterator[Session]:
    with app.sessions() as session:
        yield session


@pytest.fixture
def api_url(app: App) -> Iterator[str]:
    api = create_app(app, clock=lambda: CLOCK, config_ttl_secs=0, create_first_admin=False)
    with serve(api) as url:
        yield url


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _run(api_url: str, data_dir: Path, hours: float) -> tuple[Simulator, object, object]:
    client = ApiClient(api_url)
    client.login("root", DEFAULT_PASSWORD)
    store = FleetStore(data_dir)
    users = store.users()
    ensure_users(client, users)
    fleet = ensure_meters(client, store)
    store.write_logins(("root", DEFAULT_PASSWORD), users)
    window = int(client.config()["duplicate_window_secs"])
    simulator = Simulator(
        client, store, fleet, window_secs=window, interval_secs=5, clock=lambda: CLOCK
    )
    backfill = simulator.backfill(hours)
    live = simulator.cycle()
    client.close()
    return simulator, backfill, live


def test_one_cycle_against_a_real_server(api_url: str, session: Session, tmp_path: Path) -> None:
    make_user(session, "root", role=Role.ADMIN)
    session.rollback()
    simulator, backfill, live = _run(api_url, tmp_path, hours=3)
    assert simulator.cadence == timedelta(seconds=901)
    users = {u.username: u for u in session.scalars(select(User))}
    assert {"operator", "alice", "bob"} <= set(users)
    assert users["alice"].wallet_address and users["operator"].role == "operator"
    meters = session.scalars(select(Meter)).all()
    assert sorted(m.serial for m in meters) == sorted(m.serial for m in DEMO_METERS)
    for plan in DEMO_METERS:
        assert _mode(tmp_path / "simulator" / "meters" / f"{plan.serial}.json") == 0o600
    logins = tmp_path / "demo-logins.txt"
    assert _mode(logins) == 0o600 and _mode(tmp_path / "simulator" / "users.json") == 0o600
    assert all(name in logins.read_text() for name in ("root", "operator", "alice", "bob"))
    assert backfill.accepted > 0 and backfill.rejected == 0
    assert live.accepted >= 1 and live.rejected == 0
    stored = session.scalar(select(func.count()).select_from(MeterReading))
    assert stored == backfill.accepted + live.accepted

    # A restart reuses everything: no new meters, history answered as already stored.
    session.rollback()
    _, again, _ = _run(api_url, tmp_path, hours=3)
    assert (again.accepted, again.duplicate) == (0, backfill.accepted)
    assert session.scalar(select(func.count()).select_from(Meter)) == len(DEMO_METERS)


def test_the_simulator_signs_exactly_as_documented(tmp_path: Path) -> None:
    store = FleetStore(tmp_path)
    plan = DEMO_METERS[0]
    keypair, _ = store.load_meter(plan)
    from simulator.fleet import FleetMeter

    body = signed_reading(FleetMeter(plan, keypair, "key"), NOW, "0.123400")
    message = reading_message(
        plan.serial, parse_timestamp(body["reading_timestamp"]), parse_kwh("0.1234")
    )
    assert verify_reading_signature(str(keypair.pubkey()), body["meter_signature"], message)


def test_live_reports_are_spread_over_the_cadence(tmp_path: Path) -> None:
    from simulator.fleet import FleetMeter

    store = FleetStore(tmp_path)
    fleet = [FleetMeter(plan, store.load_meter(plan)[0], "key") for plan in DEMO_METERS]
    simulator = Simulator(
        ApiClient("http://unused"),
        store,
        fleet,
        window_secs=900,
        interval_secs=5,
        clock=lambda: CLOCK,
    )
    for meter in fleet:
        simulator.last[meter.serial] = CLOCK
    simulator.stagger()
    delays = [simulator.delay[m.serial].total_seconds() for m in fleet]
    assert delays == [0, 225.25, 450.5, 675.75]
    assert simulator.seconds_to_next() == 901
