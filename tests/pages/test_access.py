"""Access is enforced on every path: a page outside the role refuses, and the pages a
prosumer may open show only their own readings and events."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages.conftest import Dashboard, frame

REFUSED = [
    ("alice", "overview"),
    ("alice", "minting"),
    ("alice", "control"),
    ("alice", "review"),
    ("alice", "admin"),
    ("ops", "control"),
    ("ops", "review"),
    ("ops", "admin"),
    ("ops", "wallet"),
]


@pytest.mark.parametrize(("username", "page"), REFUSED)
def test_a_page_outside_the_role_refuses(
    shared_dashboard: Dashboard, username: str, page: str
) -> None:
    at = shared_dashboard.open(username, page)
    assert not at.exception
    assert at.error[0].value.startswith("Refused:")
    assert not at.title and not at.dataframe and not at.metric
    assert [button.key for button in at.button] == ["auth.logout"]  # the sidebar only


def _cells(at: AppTest, column: str) -> str:
    return frame(at, column).to_csv()


def test_a_prosumer_sees_only_their_own_readings(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("alice", "live")
    latest = frame(at, "prosumer")
    assert set(latest["prosumer"]) == {"alice"}
    assert set(latest["meter"]) == {"MTR-A1", "MTR-A2"}
    # No split by prosumer for a prosumer: there is only one.
    assert [option for option in at.radio(key="live.split").options] == ["Total", "Meter"]
    wallet = shared_dashboard.open("alice", "wallet")
    assert "MTR-B1" not in _cells(wallet, "status")


def test_a_prosumer_sees_only_their_own_events(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("alice", "events")
    at.selectbox(key="events.range").select("All time").run()
    details = _cells(at, "what happened")
    assert "alice-mint" in details
    assert "bob-mint" not in details and "staff-only" not in details
    staff = shared_dashboard.open("ops", "events")
    staff.selectbox(key="events.range").select("All time").run()
    assert "bob-mint" in _cells(staff, "what happened")
