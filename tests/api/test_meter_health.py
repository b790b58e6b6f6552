"""Data quality: flags with evidence in GET .../health, meter_flagged as it happens,
and an interval above the meter's rated capacity held for review."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, MeterReading, User
from core.meters import register_meter
from tests.api.conftest import WallClock, auth_headers
from tests.factories import NOW, keypair_for, make_user
from tests.gridtokenx import simulator as sim

START = datetime(2026, 11, 20, 10, 0, tzinfo=NOW.tzinfo)


def meter(session: Session, serial: str, **kwargs) -> str:
    owner = make_user(session)
    return register_meter(
        session, serial, owner.username, sim.public_key_hex(serial), **kwargs
    ).api_key


def health(client: TestClient, app: App, staff: User, serial: str) -> dict:
    response = client.get(f"/api/admin/meters/{serial}/health", headers=auth_headers(app, staff))
    assert response.status_code == 200, response.text
    return response.json()


def flagged(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    rows = session.scalars(select(Event.payload).where(Event.type == "meter_flagged")).all()
    session.rollback()
    return [(p["meter_serial"], p["flag"]) for p in rows]


def test_a_quiet_meter_shows_its_missing_intervals(
    client: TestClient, session: Session, app: App, operator: User
) -> None:
    key = meter(session, "GTX-H1")
    assert health(client, app, operator, "GTX-H1")["healthy"] is True
    for minutes in (0, 5, 60):  # nothing from 10:15 to 11:00
        body = sim.plain(
            "GTX-H1", generated=0.1, consumed=0.0, at=START + timedelta(minutes=minutes)
        )
        assert sim.post(client, body, key).status_code == 202
    report = health(client, app, operator, "GTX-H1")
    assert report["healthy"] is False
    [flag] = report["flags"]
    assert flag == {
        "flag": "missing_intervals",
        "evidence": {
            "count": 3,
            "intervals": [(START + timedelta(minutes=m)).isoformat() for m in (15, 30, 45)],
        },
    }
    assert flagged(session) == [("GTX-H1", "missing_intervals")]


def test_a_register_reset_and_a_clock_ahead_are_flagged_once(
    client: TestClient, session: Session, app: App, operator: User, clock: WallClock
) -> None:
    key = meter(session, "GTX-H2", reporting="cumulative_registers")
    for minutes, imported, exported in ((0, 100.0, 900.0), (5, 0.0, 10.0), (6, 0.0, 5.0)):
        body = sim.plain(
            "GTX-H2", generated=0.1, consumed=0.0, at=START + timedelta(minutes=minutes)
        )
        body["payload"]["1.1.1.8.0.255"], body["payload"]["1.1.2.8.0.255"] = imported, exported
        assert sim.post(client, body, key).status_code == 202
    ahead = sim.plain("GTX-H2", generated=0.1, consumed=0.0, at=NOW + timedelta(seconds=30))
    ahead["payload"]["1.1.1.8.0.255"], ahead["payload"]["1.1.2.8.0.255"] = 1.0, 20.0
    assert sim.post(client, ahead, key).status_code == 202
    names = {f["flag"]: f["evidence"] for f in health(client, app, operator, "GTX-H2")["flags"]}
    assert names["register_reset"]["count"] == 2
    assert names["clock_ahead"]["max_ahead_secs"] == 30.0
    # Two resets, one event (told once per hour); the jump to 12:00 also left a gap.
    assert sorted(flagged(session)) == [
        ("GTX-H2", "clock_ahead"),
        ("GTX-H2", "missing_intervals"),
        ("GTX-H2", "register_reset"),
    ]


def test_a_run_of_bad_signatures_is_flagged(
    client: TestClient, session: Session, app: App, operator: User
) -> None:
    key = meter(session, "GTX-H3")
    for second in range(0, 20, 5):
        body = sim.plain(
            "GTX-H3",
            generated=0.1,
            consumed=0.0,
            at=NOW - timedelta(minutes=1, seconds=second),
            signer=keypair_for("not-the-meter"),
        )
        assert sim.post(client, body, key).status_code == 403
    [flag] = health(client, app, operator, "GTX-H3")["flags"]
    assert (flag["flag"], flag["evidence"]["count"]) == ("bad_signatures", 4)
    assert flagged(session) == [("GTX-H3", "bad_signatures")]


def test_an_interval_above_the_rated_capacity_waits_in_review(
    client: TestClient, session: Session
) -> None:
    key = meter(session, "GTX-H4", device={"capacity_kw": "1"})
    # 15 minutes at 1 kW is 0.25 kWh; with 10 % tolerance 0.275 kWh. This sends 0.5.
    for minutes, generated in ((0, 0.5), (15, 0.01)):
        body = sim.plain(
            "GTX-H4", generated=generated, consumed=0.0, at=START + timedelta(minutes=minutes)
        )
        assert sim.post(client, body, key).status_code == 202
    session.expire_all()
    [reading] = session.scalars(select(MeterReading)).all()
    assert (reading.kwh_micro, reading.status) == (500_000, "review")
    assert "rated capacity" in reading.review_reason
