"""The operator's cockpit in a real browser (Chromium through Playwright), over the
same seeded `streamlit run app.py` as test_dashboard_browser.py.

The Overview draws today's bars and lists what needs attention; a meter that went
silent shows on the Fleet health page at its next refresh; a CSV link downloads
the rows of the screen's filter; Events reads as sentences. Screenshots as there.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.engine import create_db_engine
from core.db.models import Meter, MeterReading
from core.events import EventType, publish
from tests.e2e.test_dashboard_browser import WAIT_MS, _log_in, _shoot, browser, dashboard_url
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.slow
__all__ = ["browser", "dashboard_url"]  # fixtures, used by name


def _database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'browser.db'}"  # the one dashboard_url seeded


def _set_last_seen(tmp_path: Path, serials: list[str] | None, at: datetime | None) -> None:
    """Set `serials`' last contact (None: every meter the seed made)."""
    engine = create_db_engine(_database(tmp_path))
    with Session(engine) as session:
        chosen = (
            update(Meter) if serials is None else update(Meter).where(Meter.serial.in_(serials))
        )
        session.execute(chosen.values(last_seen_at=at))
        session.commit()
    engine.dispose()


def _pick(page: object, box: object, option: str, tries: int = 3) -> None:
    """Open select box `box` and choose `option`. A rerun that ends after the click (the
    page's own, after a reload) draws the box afresh and closes its list, so the list
    is opened again, up to `tries` times, when the option does not show."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    choice = page.get_by_role("option", name=option)  # type: ignore[attr-defined]
    for attempt in range(tries):
        box.click()  # type: ignore[attr-defined]
        try:
            choice.click(timeout=WAIT_MS // tries)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")  # type: ignore[attr-defined]


def test_cockpit_fleet_exports_and_events(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    now = datetime.now(UTC)
    _set_last_seen(tmp_path, None, now)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    _log_in(page, dashboard_url, "ops")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.get_by_text("readings waiting in review")).to_be_visible()
    expect(page.get_by_text("failed readings out of retries")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart).to_contain_text("Today: energy generated and minted per 15 minutes")
    expect(chart.locator(".barlayer .trace").first).to_be_attached()
    expect(page.get_by_test_id("stMetric").filter(has_text="Silent")).to_contain_text("0")
    _shoot(page, "overview-cockpit", tmp_path)

    page.get_by_role("link", name="Fleet health").first.click()
    expect(page.get_by_role("heading", name="Fleet health")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Silent")).to_contain_text("0")
    _set_last_seen(tmp_path, ["MTR-B1"], now - timedelta(hours=3))
    page.reload()  # one refresh (the table also reruns on its own every 30 s)
    expect(page.get_by_role("heading", name="Fleet health")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Silent")).to_contain_text("1")
    _pick(page, page.get_by_test_id("stSelectbox").filter(has_text="Meter"), "MTR-A1")
    expect(page.get_by_text("Latest mints")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_contain_text("MTR-A1: energy per")
    _shoot(page, "fleet", tmp_path)

    page.get_by_role("link", name="Readings of MTR-A1").click()
    expect(page.get_by_role("heading", name="Live readings")).to_be_visible()
    expect(page.get_by_label("Meter (serial)")).to_have_value("MTR-A1")
    link = page.get_by_role("link", name="Download readings (CSV)")
    expect(link).to_be_visible()
    response = page.request.get(dashboard_url + link.get_attribute("href"))
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text())))
    engine = create_db_engine(_database(tmp_path))
    with Session(engine) as session:  # the screen's filter, counted independently
        expected = session.scalar(
            select(func.count())
            .select_from(MeterReading)
            .join(Meter, Meter.id == MeterReading.meter_id)
            .where(Meter.serial == "MTR-A1")
            .where(MeterReading.reading_timestamp >= now - timedelta(days=1, minutes=5))
        )
    engine.dispose()
    assert rows and {row["meter_serial"] for row in rows} == {"MTR-A1"}
    assert abs(len(rows) - int(expected or 0)) <= 1  # the range's edge moves with the clock

    page.get_by_role("link", name="Events").first.click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    page.get_by_label("Meter (serial)").fill("MTR-X")
    page.get_by_label("Meter (serial)").press("Enter")
    expect(page.get_by_text("Newest 1 events")).to_be_visible()
    _shoot(page, "events-sentences", tmp_path)
    # The Events page has no timer: it reruns because the newest event id moved.
    engine = create_db_engine(_database(tmp_path))
    with Session(engine) as session:
        publish(session, EventType.METER_READING_VALIDATION_FAILED,
                {"meter_serial": "MTR-X", "error_code": "invalid_signature",
                 "error_reason": "signature does not verify"})  # fmt: skip
        session.commit()
    engine.dispose()
    expect(page.get_by_text("Newest 2 events")).to_be_visible()  # the grid is a canvas


def test_deep_links_open_after_login_without_page_not_found(
    dashboard_url: str, browser: object
) -> None:
    from playwright.sync_api import expect

    # The first page load after the server started is the one that used to show it.
    for path, username, heading in [("fleet", "ops", "Fleet health"),
                                    ("overview", "root", "Overview"),
                                    ("wallet", "alice", "My wallet")]:  # fmt: skip
        context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{dashboard_url}/{path}")
        expect(page.get_by_label("Username")).to_be_visible()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        expect(page.get_by_text("Page not found")).to_have_count(0)
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        assert page.url.split("?")[0].endswith(f"/{path}"), page.url
        expect(page.get_by_text("Page not found")).to_have_count(0)
        context.close()
