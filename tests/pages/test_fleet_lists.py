"""Fleet health and Meters & users over a fleet bigger than a page: the counts, the
worst meters, the table a page at a time, search and filters, and the pickers that
search first. The expected rows are written from the fleet below.

The fleet: the seed's MTR-A1, MTR-A2, MTR-B1 (never seen) and FLT-000..FLT-119:
FLT-000..099 seen a minute ago (reporting; FLT-050 suspended), FLT-100..119 seen
i - 90 hours ago (silent: FLT-119 the longest). Every tenth FLT meter is carol's.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import insert

from core.db.models import Meter
from tests.factories import NOW, make_user, wallet_for
from tests.pages.conftest import Dashboard, frame


def _seen(i: int):
    return NOW - (timedelta(minutes=1) if i < 100 else timedelta(hours=i - 90))


def add_fleet(dashboard: Dashboard) -> None:
    with dashboard.app.sessions() as session:
        carol = make_user(session, "carol")
        alice = dashboard.seeded.users["alice"]
        session.execute(insert(Meter), [
            {"serial": f"FLT-{i:03d}", "owner_id": carol.id if i % 10 == 0 else alice.id,
             "public_key": wallet_for(f"flt{i}"), "status": "suspended" if i == 50 else "active",
             "api_key_hash": hashlib.sha256(f"flt{i}".encode()).hexdigest(),
             "last_seen_at": _seen(i)}
            for i in range(120)
        ])  # fmt: skip
        session.commit()


@pytest.fixture(scope="module")
def fleet(shared_dashboard: Dashboard) -> Dashboard:
    add_fleet(shared_dashboard)
    return shared_dashboard


def serials(at) -> list[str]:
    return list(frame(at, "state")["serial"])


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


REPORTING = [f"FLT-{i:03d}" for i in range(100) if i != 50]
WORST = ["MTR-A1", "MTR-A2", "MTR-B1"] + [f"FLT-{i}" for i in range(119, 99, -1)] + REPORTING
WORST += ["FLT-050"]


def test_counts_worst_meters_and_the_first_page(fleet: Dashboard) -> None:
    at = fleet.open("ops", "fleet")
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Reporting"], metrics["Late"], metrics["Silent"], metrics["Suspended"]) == (
        "99", "0", "23", "1")  # fmt: skip
    assert serials(at) == WORST[:50]
    assert "1-50 of 123 meters, worst first" in captions(at)
    labels = [str(e.proto.label) for e in at.get("page_link")]
    assert [label.split(":")[0] for label in labels if "last seen" in label] == [
        "MTR-A1", "MTR-A2", "MTR-B1", "FLT-119", "FLT-118"]  # fmt: skip


def test_the_last_page_and_a_page_past_the_end(fleet: Dashboard) -> None:
    at = fleet.open("ops", "fleet")
    at.number_input(key="fleet.page").set_value(3).run()
    assert serials(at) == [f"FLT-{i:03d}" for i in range(78, 100)] + ["FLT-050"]
    assert "101-123 of 123 meters, worst first" in captions(at)
    at.text_input(key="fleet.search").input("carol").run()  # 12 meters: page 3 is gone
    assert at.number_input(key="fleet.page").value == 1
    assert serials(at) == ["FLT-110", "FLT-100"] + [
        f"FLT-{i:03d}" for i in range(0, 100, 10) if i != 50] + ["FLT-050"]  # fmt: skip
    assert "1-12 of 12 meters, worst first" in captions(at)


def test_filter_by_state_in_serial_order(fleet: Dashboard) -> None:
    at = fleet.open("root", "fleet")
    at.multiselect(key="fleet.health").select("silent")
    at.selectbox(key="fleet.order").select("serial").run()
    assert serials(at) == [f"FLT-{i}" for i in range(100, 120)] + ["MTR-A1", "MTR-A2", "MTR-B1"]
    at.text_input(key="fleet.search").input("flt-11").run()
    assert serials(at) == [f"FLT-{i}" for i in range(110, 120)]


def test_the_drill_down_searches_then_picks(fleet: Dashboard) -> None:
    at = fleet.open("ops", "fleet")
    at.text_input(key="fleet.meter.find").input("flt-11").run()
    assert at.selectbox(key="fleet.meter").options == [f"FLT-{i}" for i in range(110, 120)]
    at.selectbox(key="fleet.meter").select("FLT-115").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.text_input(key="fleet.meter.find").input("MTR-").run()  # the choice stays
    assert at.selectbox(key="fleet.meter").value == "FLT-115"
    assert at.selectbox(key="fleet.meter").options == ["FLT-115", "MTR-A1", "MTR-A2", "MTR-B1"]


def test_the_csv_holds_every_meter_of_the_filter(fleet: Dashboard) -> None:
    at = fleet.open("ops", "fleet")
    at.text_input(key="fleet.search").input("carol").run()
    assert not at.get("download_button")  # built only when asked
    at.button(key="fleet.prepare").click().run()
    [button] = at.get("download_button")
    assert "Download fleet (CSV)" in str(button.proto.label)


def test_admin_meters_users_paged_and_searched(fleet: Dashboard) -> None:
    at = fleet.open("root", "admin")
    assert not at.exception and not at.error
    table = frame(at, "registered (UTC)")
    assert list(table["serial"]) == [f"FLT-{i:03d}" for i in range(50)]
    assert "1-50 of 123 meters" in captions(at)
    at.number_input(key="admin.meters_page").set_value(3).run()
    assert list(frame(at, "registered (UTC)")["serial"]) == [
        f"FLT-{i}" for i in range(100, 120)] + ["MTR-A1", "MTR-A2", "MTR-B1"]  # fmt: skip
    at.text_input(key="admin.meters_search").input("CAROL").run()
    assert list(frame(at, "registered (UTC)")["serial"]) == [
        f"FLT-{i:03d}" for i in range(0, 120, 10)]  # fmt: skip
    at.selectbox(key="admin.meters_status").select("suspended").run()
    assert list(frame(at, "registered (UTC)")["serial"]) == ["FLT-050"]
    at.text_input(key="admin.users_search").input("o").run()
    assert list(frame(at, "wallet")["username"]) == ["bob", "carol", "ops", "root"]
    at.text_input(key="admin.meter_owner.find").input("car").run()
    assert at.selectbox(key="admin.meter_owner").options == ["carol"]  # prosumers only
    at.text_input(key="admin.user_toggle_name.find").input("b").run()
    assert at.selectbox(key="admin.user_toggle_name").value == "bob"  # the first match


def test_gateway_meters_by_search_then_pick(dashboard: Dashboard) -> None:
    add_fleet(dashboard)
    at = dashboard.open("root", "admin")
    at.text_input(key="admin.gateway_meters.find").input("flt-11").run()
    at.multiselect(key="admin.gateway_meters").select("FLT-111")
    at.text_input(key="admin.gateway_meters.find").input("flt-00").run()
    assert at.multiselect(key="admin.gateway_meters").options[:3] == [
        "FLT-111", "FLT-000", "FLT-001"]  # fmt: skip
    at.multiselect(key="admin.gateway_meters").select("FLT-001")
    at.text_input(key="admin.gateway_name").input("headend-9")
    at.button(key="admin.gateway_create").click().run()
    assert list(frame(at, "name")["meters"]) == [2]
    at.text_input(key="admin.gateway_add.headend-9.find").input("flt-05").run()
    at.multiselect(key="admin.gateway_add.headend-9").select("FLT-055")
    at.multiselect(key="admin.gateway_remove.headend-9").select("FLT-111")
    at.button(key="admin.gateway_assign").click().run()
    assert "Gateway headend-9 now submits for 2 meter(s)." in at.success[0].value
    at.run()
    assert "headend-9 submits for 2 meter(s)." in captions(at)
    assert at.multiselect(key="admin.gateway_remove.headend-9").options == ["FLT-001", "FLT-055"]
