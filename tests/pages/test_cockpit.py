"""The Overview as a cockpit and the Fleet health page, on the seeded world.

The seed has one failed reading and one in review, and meters that never reported
(all silent): the attention list names each with a link to where it is handled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.db.models import Meter
from core.events import EventType, publish
from tests.factories import NOW
from tests.pages.conftest import Dashboard, frame


def texts(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def links(at: AppTest) -> list[tuple[str, str]]:
    return [(str(e.proto.label), str(e.proto.page)) for e in at.get("page_link")]


def test_overview_shows_charts_fleet_costs_and_attention(shared_dashboard: Dashboard) -> None:
    for username in ("root", "ops"):
        at = shared_dashboard.open(username, "overview")
        assert not at.exception and not at.error
        assert len(at.get("plotly_chart")) == 1  # today's 15-minute bars
        said = texts(at)
        assert "**1** failed readings out of retries" in said
        assert "**1** readings waiting in review" in said
        assert "**3** silent meters" in said
        targets = {page for _, page in links(at)}
        assert {"minting", "review", "fleet"} <= {t.rsplit("/", 1)[-1] for t in targets}
        labels = [label for label, _ in links(at)]
        assert any(label.startswith("MTR-A1: silent") for label in labels)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Silent"] == "3" and metrics["Reporting"] == "0"
        assert "Lamports per reading" in metrics and "Runway" in metrics


def test_a_silent_meter_appears_on_the_fleet_page_within_one_refresh(dashboard: Dashboard) -> None:
    with dashboard.app.sessions() as session:
        for meter in session.scalars(select(Meter)):
            meter.last_seen_at = NOW - timedelta(minutes=5)
        session.commit()
    at = dashboard.open("ops", "fleet")
    table = frame(at, "state")
    assert set(table["state"]) == {"reporting"}
    with dashboard.app.sessions() as session:
        quiet = session.scalars(select(Meter).where(Meter.serial == "MTR-B1")).one()
        quiet.last_seen_at = NOW - timedelta(hours=3)
        session.commit()
    at.run()  # one refresh (the table's fragment reruns on its timer the same way)
    table = frame(at, "state")
    assert dict(zip(table["serial"], table["state"], strict=True))["MTR-B1"] == "silent"
    at.multiselect(key="fleet.health").select("silent").run()
    assert list(frame(at, "state")["serial"]) == ["MTR-B1"]


def test_fleet_drill_down(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("root", "fleet")
    at.selectbox(key="fleet.range").select("Last 7 days")
    at.selectbox(key="fleet.meter").select("MTR-A1").run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 1
    minted = frame(at, "transaction")
    assert len(minted) == 3  # alice's three minted readings on MTR-A1
    assert {label for label, _ in links(at)} >= {"Readings of MTR-A1", "Events of MTR-A1"}


def test_fleet_refuses_a_prosumer(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("alice", "fleet")
    assert "Refused" in at.error[0].value


def test_a_flagged_meter_is_counted_listed_and_filterable(dashboard: Dashboard) -> None:
    with dashboard.app.sessions() as session:
        publish(session, EventType.METER_FLAGGED,
                {"meter_serial": "MTR-A2", "flag": "bad_signatures", "evidence": {"count": 3}},
                at=NOW - timedelta(hours=1))  # fmt: skip
        session.commit()
    at = dashboard.open("ops", "overview")
    assert {m.label: m.value for m in at.metric}["Flagged"] == "1"
    assert "**1** flagged meters" in texts(at)
    assert ("MTR-A2: flagged", "fleet") in [
        (label, page.rsplit("/", 1)[-1]) for label, page in links(at)
    ]
    fleet = dashboard.open("ops", "fleet")
    fleet.toggle(key="fleet.flagged").set_value(True).run()
    table = frame(fleet, "flags")
    assert list(table["serial"]) == ["MTR-A2"] and list(table["flags"]) == ["bad_signatures 1"]
