"""Telemetry at any cadence settles into intervals; each interval's surplus is one reading.

The oracle is integer arithmetic in micro-kWh on the values as sent (the JSON
text of their `kwh`), never the code under test.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import (
    IntervalAmount,
    MeterReading,
    SettlementInterval,
    TelemetrySample,
)
from core.meters import register_meter
from core.settlement import close_due_intervals
from tests.api.conftest import WallClock, error_of
from tests.factories import NOW, make_user
from tests.gridtokenx import simulator as sim

START = datetime(2026, 11, 20, 11, 15, tzinfo=NOW.tzinfo)  # an interval boundary


def micro(net: float) -> int:
    """The sent kwh (json.dumps writes repr) in micro-kWh, by integer arithmetic."""
    return int(Decimal(repr(net)) * 1_000_000)


def fleet_meter(session: Session, serial: str, **kwargs) -> str:
    owner = make_user(session)
    return register_meter(
        session, serial, owner.username, sim.public_key_hex(serial), **kwargs
    ).api_key


def rows(session: Session, model, *order):
    session.expire_all()
    found = session.scalars(select(model).order_by(*order)).all()
    session.expunge_all()  # detached with their values: reading them needs no transaction
    session.rollback()  # on SQLite an open read would hold off the API's next write
    return found


def tick(serial: str, at: datetime, index: int, *, day: bool) -> tuple[dict, int]:
    # By day the panels mostly out-produce the house, at night never; ticks vary.
    generated = round((0.004 + (index % 7) * 0.0011) if day else 0.0, 6)
    consumed = round(0.003 + (index % 5) * 0.0009, 6)
    body = sim.plain(serial, generated=generated, consumed=consumed, at=at)
    return body, micro(body["payload"]["kwh"])


def test_five_second_ticks_settle_in_intervals(client: TestClient, session: Session) -> None:
    key = fleet_meter(session, "GTX-T1")
    sent: dict[datetime, int] = {}
    at = START
    index = 0
    while at <= START + timedelta(minutes=30):  # two whole intervals and the first tick after
        body, net = tick("GTX-T1", at, index, day=at < START + timedelta(minutes=15))
        response = sim.post(client, body, key)
        assert response.status_code == 202, response.text
        interval = START + timedelta(minutes=15 * ((at - START) // timedelta(minutes=15)))
        sent[interval] = sent.get(interval, 0) + net
        at += timedelta(seconds=5)
        index += 1
    assert len(rows(session, TelemetrySample, TelemetrySample.id)) == index
    intervals = rows(session, SettlementInterval, SettlementInterval.interval_start)
    assert [(i.interval_start, i.status, i.net_micro) for i in intervals] == [
        (START, "closed", sent[START]),
        (START + timedelta(minutes=15), "closed", sent[START + timedelta(minutes=15)]),
        (START + timedelta(minutes=30), "open", sent[START + timedelta(minutes=30)]),
    ]
    day, night = sent[START], sent[START + timedelta(minutes=15)]
    assert day > 0 > night
    readings = rows(session, MeterReading, MeterReading.id)
    assert [(r.kwh_micro, r.reading_timestamp, r.status) for r in readings] == [
        (day, START, "pending")
    ]


def test_net_below_zero_is_stored_and_never_minted(client: TestClient, session: Session) -> None:
    key = fleet_meter(session, "GTX-N1")
    night = [
        sim.plain("GTX-N1", generated=0.0, consumed=0.25, at=START + timedelta(minutes=m))
        for m in (0, 5, 10)
    ]
    for body in night:
        assert sim.post(client, body, key).status_code == 202
    closing = sim.plain("GTX-N1", generated=0.5, consumed=0.0, at=START + timedelta(minutes=15))
    answer = sim.post(client, closing, key)
    assert answer.status_code == 202, answer.text
    [first, _] = rows(session, SettlementInterval, SettlementInterval.interval_start)
    assert (first.status, first.net_micro, first.settled_micro) == ("closed", -750_000, 0)
    assert rows(session, MeterReading, MeterReading.id) == []


def test_a_late_sample_mints_only_the_difference_once(client: TestClient, session: Session) -> None:
    key = fleet_meter(session, "GTX-L1")
    for minutes, generated in ((0, 1.0), (15, 0.25)):
        body = sim.plain(
            "GTX-L1", generated=generated, consumed=0.0, at=START + timedelta(minutes=minutes)
        )
        assert sim.post(client, body, key).status_code == 202
    late = sim.plain("GTX-L1", generated=0.5, consumed=0.125, at=START + timedelta(minutes=7))
    answer = sim.post(client, late, key)
    assert answer.status_code == 202, answer.text
    assert answer.json()["late"] is True
    assert sim.post(client, late, key).status_code == 200  # a resend changes nothing
    shrinking = sim.plain("GTX-L1", generated=0.0, consumed=0.1, at=START + timedelta(minutes=9))
    assert sim.post(client, shrinking, key).status_code == 202
    readings = rows(session, MeterReading, MeterReading.id)
    assert [r.kwh_micro for r in readings] == [1_000_000, 375_000]
    amounts = rows(session, IntervalAmount, IntervalAmount.id)
    assert [(a.seq, a.kwh_micro) for a in amounts] == [(0, 1_000_000), (1, 375_000)]
    [first, _] = rows(session, SettlementInterval, SettlementInterval.interval_start)
    assert (first.net_micro, first.settled_micro) == (1_275_000, 1_375_000)


def test_the_grace_closes_an_interval_no_sample_completes(
    client: TestClient, session: Session, app: App, clock: WallClock
) -> None:
    key = fleet_meter(session, "GTX-G1")
    clock.now = START + timedelta(minutes=14)
    body = sim.plain("GTX-G1", generated=0.5, consumed=0.0, at=START + timedelta(minutes=14))
    assert sim.post(client, body, key).status_code == 202
    end = START + timedelta(minutes=15)
    config = app.config()
    assert close_due_intervals(app.sessions, config, end + timedelta(seconds=119)) == 0
    assert close_due_intervals(app.sessions, config, end + timedelta(seconds=120)) == 1
    assert close_due_intervals(app.sessions, config, end + timedelta(seconds=600)) == 0
    [interval] = rows(session, SettlementInterval, SettlementInterval.id)
    assert (interval.status, interval.closed_by) == ("closed", "grace")
    assert [r.kwh_micro for r in rows(session, MeterReading, MeterReading.id)] == [500_000]


def test_cumulative_registers_settle_by_difference_and_a_reset_mints_nothing(
    client: TestClient, session: Session
) -> None:
    key = fleet_meter(session, "GTX-C1", reporting="cumulative_registers")

    def registers(minutes: int, import_wh: float, export_wh: float) -> dict:
        body = sim.plain(
            "GTX-C1", generated=0.001, consumed=0.0, at=START + timedelta(minutes=minutes)
        )
        body["payload"]["1.1.1.8.0.255"] = import_wh
        body["payload"]["1.1.2.8.0.255"] = export_wh
        # The registers are outside their signed message; the tick's kwh still signs.
        return body

    # baseline, then a tick lost between 5 and 10, then a reset at 12, then 15 closes.
    for minutes, imported, exported in (
        (0, 1000.0, 5000.0),
        (5, 1100.0, 5600.0),
        (10, 1300.0, 6900.0),
        (12, 0.0, 10.0),
        (15, 50.0, 510.0),
    ):
        response = sim.post(client, registers(minutes, imported, exported), key)
        assert response.status_code == 202, response.text
    samples = rows(session, TelemetrySample, TelemetrySample.sample_timestamp)
    assert [(s.energy_micro, s.note) for s in samples] == [
        (0, None),
        (500_000, None),
        (1_100_000, None),
        (0, "register_reset"),
        (450_000, None),
    ]
    [first, second] = rows(session, SettlementInterval, SettlementInterval.interval_start)
    assert (first.status, first.net_micro) == ("closed", 1_600_000)
    assert [r.kwh_micro for r in rows(session, MeterReading, MeterReading.id)] == [1_600_000]
    missing = sim.plain("GTX-C1", generated=0.001, consumed=0.0, at=START + timedelta(minutes=20))
    del missing["payload"]["1.1.1.8.0.255"]
    refused = sim.post(client, missing, key)
    assert (refused.status_code, error_of(refused)["code"]) == (422, "invalid_format")
    assert second.net_micro == 450_000


def test_the_classic_door_keeps_its_meaning(client: TestClient, session: Session) -> None:
    from tests.factories import make_meter

    keys = make_meter(session, serial="M-CLASSIC")
    at = NOW - timedelta(minutes=10)
    first = client.post(
        "/api/meters/submit-reading", json=keys.payload(kwh="1.5", at=at), headers=keys.headers
    )
    assert first.status_code == 201
    close = client.post(
        "/api/meters/submit-reading",
        json=keys.payload(kwh="1.5", at=at + timedelta(seconds=5)),
        headers=keys.headers,
    )
    assert (close.status_code, error_of(close)["code"]) == (409, "duplicate_reading")
    assert rows(session, SettlementInterval, SettlementInterval.id) == []


def test_intervals_are_shown_to_staff_net_below_zero_included(
    client: TestClient, session: Session, app: App, operator
) -> None:
    from tests.api.conftest import auth_headers

    key = fleet_meter(session, "GTX-V1")
    for minutes, generated, consumed in ((0, 0.0, 0.5), (15, 0.25, 0.0)):
        body = sim.plain(
            "GTX-V1", generated=generated, consumed=consumed, at=START + timedelta(minutes=minutes)
        )
        assert sim.post(client, body, key).status_code == 202
    response = client.get("/api/admin/meters/GTX-V1/intervals", headers=auth_headers(app, operator))
    assert response.status_code == 200, response.text
    assert [(i["status"], i["net_kwh"], i["settled_kwh"]) for i in response.json()] == [
        ("open", "0.250000", "0.000000"),
        ("closed", "-0.500000", "0.000000"),
    ]
