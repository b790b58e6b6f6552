"""The fleet's lists in SQL: states counted and filtered where the meters are, the
Fleet health table a page at a time, the admin's meters, users and gateways paged
and searched. Expected values are written from the world below, not computed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import views
from core.bootstrap import App
from core.db.models import Meter, User
from core.errors import Forbidden
from core.events import EventType, publish
from core.gateways import create_gateway
from core.views.fleet import Health, find_serials, fleet_summary
from core.views.fleet_table import FleetOrder, FleetQuery, count_fleet, fleet_page
from core.views.gateways import count_gateways, gateway_serials, gateways
from tests.factories import NOW, make_meter, make_reading, make_user

# serial -> (owner, minutes since last seen or None for never, suspended)
WORLD = {
    "MTR-A-001": ("anna", 0, False),  # reporting
    "MTR-A-002": ("anna", 30, False),  # reporting: exactly LATE_AFTER is not late
    "MTR-A-003": ("anna", 31, False),  # late
    "MTR-B-001": ("bert", 120, False),  # late: exactly SILENT_AFTER is not silent
    "MTR-B-002": ("bert", 121, False),  # silent
    "MTR-B-003": ("bert", None, False),  # silent, never seen
    "MTR-C_100": ("carl_x", 500, False),  # silent, the longest seen
    "MTR-C-101": ("carl_x", 5, True),  # suspended
}


@pytest.fixture
def fleet_world(app: App) -> dict[str, User]:
    with app.sessions() as session:
        staff = {"ops": make_user(session, "ops", role="operator"),
                 "root": make_user(session, "root", role="admin")}  # fmt: skip
        owners = {name: make_user(session, name) for name in ("anna", "bert", "carl_x")}
        for serial, (owner, minutes, suspended) in WORLD.items():
            meter = make_meter(session, owners[owner], serial=serial, suspended=suspended).meter
            meter.last_seen_at = None if minutes is None else NOW - timedelta(minutes=minutes)
        session.commit()
        one = session.scalars(select(Meter).where(Meter.serial == "MTR-A-003")).one()
        for minutes, kwh in ((50, "1.25"), (35, "0.75")):
            make_reading(session, one, kwh=kwh, at=NOW - timedelta(minutes=minutes))
        for serial, code in (("MTR-B-002", "invalid_signature"), ("MTR-B-002", "stale_reading"),
                             ("MTR-A-001", "invalid_signature")):  # fmt: skip
            refused = {"meter_serial": serial, "error_code": code}
            publish(session, EventType.METER_READING_VALIDATION_FAILED, refused,
                    at=NOW - timedelta(hours=1))  # fmt: skip
        publish(session, EventType.METER_FLAGGED, {"meter_serial": "MTR-A-002", "flag":
                "clock_ahead", "evidence": {}}, at=NOW - timedelta(hours=2))  # fmt: skip
        publish(session, EventType.METER_FLAGGED, {"meter_serial": "MTR-A-002", "flag":
                "clock_ahead", "evidence": {}}, at=NOW - timedelta(hours=3))  # fmt: skip
        publish(session, EventType.METER_FLAGGED, {"meter_serial": "MTR-B-001", "flag":
                "register_reset", "evidence": {}}, at=NOW - timedelta(days=3))  # fmt: skip
        session.commit()
        create_gateway(session, "HEADEND-1", ["MTR-A-001", "MTR-A-002", "MTR-B-003"])
        create_gateway(session, "HEADEND-2", ["MTR-C_100"])
        create_gateway(session, "OTHER-GW", [])
        return {name: session.get(User, user.id) for name, user in {**staff, **owners}.items()}  # type: ignore[misc]


def test_states_counted_and_the_worst_first(app: App, fleet_world: dict[str, User]) -> None:
    with views.read_session(app.engine) as session:
        summary = fleet_summary(session, fleet_world["ops"], NOW, worst=4)
    assert summary.counts == {Health.REPORTING: 2, Health.LATE: 2, Health.SILENT: 3,
                              Health.SUSPENDED: 1}  # fmt: skip
    assert [(s, h) for s, h, _ in summary.worst] == [
        ("MTR-B-003", Health.SILENT), ("MTR-C_100", Health.SILENT), ("MTR-B-002", Health.SILENT),
        ("MTR-B-001", Health.LATE),
    ]  # fmt: skip
    assert summary.flagged == ["MTR-A-002"] and summary.flagged_count == 1  # the 3-day-old: out
    assert summary.most_refused == [("MTR-B-002", 2), ("MTR-A-001", 1)]


def test_the_table_a_page_at_a_time(app: App, fleet_world: dict[str, User]) -> None:
    ops, since = fleet_world["ops"], NOW - timedelta(hours=24)
    worst = ["MTR-B-003", "MTR-C_100", "MTR-B-002", "MTR-B-001", "MTR-A-003", "MTR-A-002",
             "MTR-A-001", "MTR-C-101"]  # fmt: skip
    with views.read_session(app.engine) as session:
        pages = [fleet_page(session, ops, NOW, since, FleetQuery(), limit=3, offset=offset)
                 for offset in (0, 3, 6)]  # fmt: skip
        assert count_fleet(session, ops, NOW, since, FleetQuery()) == 8
        by_serial = fleet_page(session, ops, NOW, since, FleetQuery(order=FleetOrder.SERIAL),
                               limit=2, offset=2)  # fmt: skip

        def serials(query: FleetQuery) -> list[str]:
            rows = fleet_page(session, ops, NOW, since, query, limit=None)
            assert count_fleet(session, ops, NOW, since, query) == len(rows)
            return [m.serial for m in rows]

        assert serials(FleetQuery(states=(Health.LATE, Health.SUSPENDED))) == [
            "MTR-B-001", "MTR-A-003", "MTR-C-101"]  # fmt: skip
        assert serials(FleetQuery(search="BERT")) == ["MTR-B-003", "MTR-B-002", "MTR-B-001"]
        assert serials(FleetQuery(search="c_1")) == ["MTR-C_100"]  # "_" is a letter, not LIKE's
        assert serials(FleetQuery(search="x")) == ["MTR-C_100", "MTR-C-101"]  # owner carl_x
        assert serials(FleetQuery(search="%")) == []
        assert serials(FleetQuery(flagged_only=True)) == ["MTR-A-002"]
        week = NOW - timedelta(days=7)
        assert [m.serial for m in fleet_page(session, ops, NOW, week, FleetQuery(
            flagged_only=True, order=FleetOrder.SERIAL))] == ["MTR-A-002", "MTR-B-001"]  # fmt: skip
        with pytest.raises(Forbidden):
            count_fleet(session, fleet_world["anna"], NOW, since, FleetQuery())
    assert [m.serial for page in pages for m in page] == worst
    assert [m.serial for m in by_serial] == ["MTR-A-003", "MTR-B-001"]
    late = pages[1][1]  # MTR-A-003: two readings, 2.0 kWh
    assert (late.serial, late.health, late.readings, late.kwh_micro) == (
        "MTR-A-003", Health.LATE, 2, 2_000_000)  # fmt: skip
    silent = pages[0][2]
    assert silent.rejections == {"invalid_signature": 1, "stale_reading": 1}
    assert pages[1][2].flags == {"clock_ahead": 2} and pages[1][2].owner == "anna"


def test_find_serials_keeps_the_current_choice(app: App, fleet_world: dict[str, User]) -> None:
    with views.read_session(app.engine) as session:
        ops = fleet_world["ops"]
        assert find_serials(session, ops, "b-00", limit=2) == ["MTR-B-001", "MTR-B-002"]
        assert find_serials(session, ops, "b-00", limit=2, keep="MTR-C-101") == [
            "MTR-C-101", "MTR-B-001"]  # fmt: skip
        assert find_serials(session, ops, "b-00", limit=2, keep="MTR-GONE") == [
            "MTR-B-001", "MTR-B-002"]  # fmt: skip


def test_admin_lists_paged_and_searched(app: App, fleet_world: dict[str, User]) -> None:
    root = fleet_world["root"]
    with views.read_session(app.engine) as session:
        page = views.meters(session, root, limit=3, offset=3)
        assert [m.serial for m in page] == ["MTR-B-001", "MTR-B-002", "MTR-B-003"]
        assert views.count_meters(session, root) == 8
        assert views.count_meters(session, root, search="carl") == 2
        assert [m.serial for m in views.meters(session, root, status="suspended")] == ["MTR-C-101"]
        assert views.count_meters(session, root, search="anna", status="suspended") == 0
        assert [u.username for u in views.users(session, root, limit=2, offset=1)] == [
            "bert", "carl_x"]  # fmt: skip
        assert views.count_users(session, root, search="R") == 3  # bert, carl_x, root
        assert views.count_users(session, root, search="_") == 1
        rows = gateways(session, root)
        assert [(g.name, g.meters) for g in rows] == [
            ("HEADEND-1", 3), ("HEADEND-2", 1), ("OTHER-GW", 0)]  # fmt: skip
        assert [g.name for g in gateways(session, root, search="head", limit=1, offset=1)] == [
            "HEADEND-2"]  # fmt: skip
        assert count_gateways(session, root, search="head") == 2
        assert gateway_serials(session, root, "HEADEND-1", search="a-") == [
            "MTR-A-001", "MTR-A-002"]  # fmt: skip
        for call in (views.count_meters, views.count_users, count_gateways):
            with pytest.raises(Forbidden):
                call(session, fleet_world["ops"])
