"""Each table's "Download CSV" link, followed through the dashboard's export route,
gives exactly the rows the screen shows for its filter (the seed is smaller than a
screen's limit, so the screen shows every matching row)."""

from __future__ import annotations

import csv
import io
import warnings

import pytest
from starlette.applications import Starlette
from streamlit.testing.v1 import AppTest

from pages.common.export_route import export_routes
from tests.pages.conftest import Dashboard, frame

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def link_of(at: AppTest, key: str) -> str:
    for element in at.get("link_button"):
        if element.proto.id.endswith(key) or key in element.proto.id:
            return str(element.proto.url)
    raise AssertionError(f"no link button {key!r}")


def download(url: str) -> list[dict[str, str]]:
    with TestClient(Starlette(routes=export_routes())) as client:
        response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_live_readings_export_follows_the_filter(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("ops", "live")
    at.radio(key="live.range").set_value("Last 7 days")
    at.text_input(key="live.meter").input("MTR-A1").run()
    screen = frame(at, "prosumer")
    rows = download(link_of(at, "live.download"))
    assert sorted(int(r["id"]) for r in rows) == sorted(int(i) for i in screen["id"])
    assert {r["meter_serial"] for r in rows} == {"MTR-A1"}
    at.selectbox(key="live.status").select("minted").run()
    minted = download(link_of(at, "live.download"))
    assert sorted(int(r["id"]) for r in minted) == sorted(
        int(i) for i in frame(at, "prosumer")["id"]
    )
    assert {r["status"] for r in minted} == {"minted"}


def test_a_prosumer_downloads_only_their_readings(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("alice", "live")
    at.radio(key="live.range").set_value("Last 30 days").run()
    rows = download(link_of(at, "live.download"))
    assert rows and {r["username"] for r in rows} == {"alice"}


def test_events_export_follows_the_filter(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("ops", "events")
    at.selectbox(key="events.range").select("All time")
    at.multiselect(key="events.types").select("tokens_minted").run()
    screen = frame(at, "what happened")
    rows = download(link_of(at, "events.download"))
    assert [int(r["id"]) for r in rows] == [int(i) for i in screen["id"]]
    at.text_input(key="events.user").input("bob").run()
    rows = download(link_of(at, "events.download"))
    assert [int(r["id"]) for r in rows] == [int(i) for i in frame(at, "what happened")["id"]]
    assert len(rows) == 1


@pytest.mark.parametrize(("key", "column", "field"), [
    ("admin.meters_download", "serial", "serial"),
    ("admin.users_download", "username", "username"),
])  # fmt: skip
def test_admin_tables_export(
    shared_dashboard: Dashboard, key: str, column: str, field: str
) -> None:
    at = shared_dashboard.open("root", "admin")
    rows = download(link_of(at, key))
    assert sorted(r[field] for r in rows) == sorted(frame(at, column)[column])


def test_a_tampered_or_foreign_link_is_refused(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("ops", "events")
    url = link_of(at, "events.download")
    with TestClient(Starlette(routes=export_routes())) as client:
        assert client.get(url[:-3] + "xyz").status_code == 422
        assert (
            client.get(url.replace("/export/events.csv", "/export/readings.csv")).status_code == 403
        )
        assert client.get("/export/events.csv").status_code == 422


def test_mints_export_follows_the_range(shared_dashboard: Dashboard) -> None:
    at = shared_dashboard.open("ops", "minting")
    at.radio(key="minting.range").set_value("Last 7 days").run()
    screen = frame(at, "batch")
    rows = download(link_of(at, "minting.download"))
    assert [int(r["batch_id"]) for r in rows] == [int(b) for b in screen["batch"]]
    assert rows and {r["status"] for r in rows} == set(screen["status"])
