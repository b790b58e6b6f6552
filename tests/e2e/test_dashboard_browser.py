"""The dashboard in a real browser: `streamlit run app.py` over a seeded database,
driven by headless Chromium through Playwright.

Logs in, checks the overview's numbers, that a Plotly chart draws on Live readings,
that a refresh keeps the login (an HttpOnly cookie, no token in the URL), that a
prosumer is refused a staff page by URL, and that logout and an admin's "end
sessions" end the login in every tab and for every copy of the cookie or URL.
Screenshots go to the test's temporary directory; with DASHBOARD_SCREENSHOTS_DIR
set they are also written there (that is how docs/screenshots/ is made).

Under CI=true a missing Chromium or Playwright fails the run; elsewhere the test
skips with a loud reason. Every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from core.db.engine import create_db_engine
from tests.core.certificates.support import seed_certificates
from tests.factories import DEFAULT_PASSWORD
from tests.pages.seed import seed_dashboard, seed_history
from tests.support.localnet import wait_for
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
START_DEADLINE_SECS = 60
WAIT_MS = 20_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true the browser test must run", pytrace=False)
    pytest.skip(f"!!! SKIPPING THE BROWSER TEST: {reason}")


@pytest.fixture
def dashboard_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port over a fresh, seeded SQLite database."""
    shutil.copyfile(sqlite_template, tmp_path / "browser.db")  # migrated once per session
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = create_db_engine(url)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        seed_history(session, seed_dashboard(session, now), now)
        seed_certificates(session, now)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path / "data"),
        "API_SECRET_KEY": "browser-test-secret-of-32-bytes-or-more",
        "SOLANA_RPC_URL": "http://127.0.0.1:9",  # closed: the chain reads as unavailable
    }
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--server.fileWatcherType", "none"]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE_SECS
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited: {(tmp_path / 'streamlit.log').read_text()}")
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {START_DEADLINE_SECS} s")
            time.sleep(0.1)  # polling the health endpoint, not synchronising on time
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per module; each test opens its own context (cookies, pages)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -r requirements.txt)")
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def _shoot(page: object, name: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Streamlit shows its status widget while a run is in flight: wait it out.
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)  # type: ignore[attr-defined]
    targets = [tmp_path / "screenshots"]
    if os.environ.get("DASHBOARD_SCREENSHOTS_DIR"):
        targets.append(Path(os.environ["DASHBOARD_SCREENSHOTS_DIR"]))
    for directory in targets:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _log_in(page: object, base: str, username: str) -> None:
    known = {c["value"] for c in page.context.cookies()}  # type: ignore[attr-defined]
    page.goto(base)  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password", exact=True).fill(DEFAULT_PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    # The login page then sends the browser through the route that sets the cookie and
    # back; wait for that round trip before using the page, or a click races the reload.
    wait_for(
        lambda: any(c["name"] == "gtx_session" and c["value"] not in known
                    for c in page.context.cookies()),  # type: ignore[attr-defined]
        timeout=WAIT_MS / 1000,
        what="the session cookie",
    )  # fmt: skip
    page.wait_for_load_state("load")  # type: ignore[attr-defined]


def _assert_cookie_not_url(page: object) -> dict:
    """The login is an HttpOnly cookie; the URL carries nothing that logs anyone in."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stSidebar")).to_contain_text("Logged in as")  # type: ignore[attr-defined]
    cookies = {c["name"]: c for c in page.context.cookies()}  # type: ignore[attr-defined]
    assert "gtx_session" in cookies, cookies
    cookie = cookies["gtx_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] not in page.url  # type: ignore[attr-defined]
    assert "session=" not in page.url and "code=" not in page.url  # type: ignore[attr-defined]
    return cookie


def test_operator_logs_in_and_sees_overview_and_charts(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    _log_in(page, dashboard_url, "root")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    metrics = page.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Readings today")).to_be_visible()
    expect(metrics.filter(has_text="In review")).to_contain_text("1")
    expect(page.get_by_text("chain unavailable").first).to_be_visible()
    _assert_cookie_not_url(page)
    _shoot(page, "overview", tmp_path)

    page.get_by_role("link", name="Live readings").click()
    expect(page.get_by_role("heading", name="Live readings")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_contain_text("Energy (kWh)")
    expect(chart.locator(".scatterlayer .trace").first).to_be_attached()
    _shoot(page, "live-readings", tmp_path)

    page.reload()  # the login survives a refresh: the HttpOnly cookie
    expect(page.get_by_role("heading", name="Live readings")).to_be_visible()

    for title, name, last in [  # `last`: text at the end of the page, so it has rendered
        ("Minting", "minting", "Failed readings"),
        ("Events", "events", "Newest"),
        ("Control", "control", "Reset all overrides"),
        ("Review queue", "review", "Force mint"),
        ("Meters & users", "admin", "Register a meter"),
    ]:
        page.get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        expect(page.get_by_text(last).first).to_be_visible()
        _shoot(page, name, tmp_path)


def test_prosumer_sees_their_wallet_and_is_refused_staff_pages(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    _log_in(page, dashboard_url, "alice")
    expect(page.get_by_role("heading", name="My wallet")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_visible()
    expect(page.get_by_role("link", name="Control")).to_have_count(0)
    _shoot(page, "wallet", tmp_path)
    page.goto(f"{dashboard_url}/control")
    expect(page.get_by_text("Refused: Control is for admin only")).to_be_visible()


def test_certificates_page_for_each_role(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    _log_in(page, dashboard_url, "root")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Certificates").click()
    expect(page.get_by_role("heading", name="Certificates")).to_be_visible()
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_contain_text("Certificates per day")
    expect(page.get_by_text("Admin: approve or cancel")).to_be_visible()
    _shoot(page, "certificates-staff", tmp_path)

    operator = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    operator.set_default_timeout(WAIT_MS)
    _log_in(operator, dashboard_url, "ops")
    expect(operator.get_by_role("heading", name="Overview")).to_be_visible()
    operator.get_by_role("link", name="Certificates").click()
    expect(operator.get_by_role("heading", name="Registry")).to_be_visible()
    expect(operator.get_by_text("Download certificates (CSV)").first).to_be_visible()
    expect(operator.get_by_text("Admin: approve or cancel")).to_have_count(0)  # admins only
    expect(operator.get_by_text("Retire (claim)")).to_have_count(0)  # holders only

    prosumer = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    prosumer.set_default_timeout(WAIT_MS)
    _log_in(prosumer, dashboard_url, "alice")
    expect(prosumer.get_by_role("heading", name="My wallet")).to_be_visible()
    prosumer.get_by_role("link", name="Certificates").click()
    expect(prosumer.get_by_role("heading", name="My certificates")).to_be_visible()
    expect(prosumer.get_by_text("Retire (claim)")).to_be_visible()
    expect(
        prosumer.get_by_role("button", name="Download statement (HTML, printable)")
    ).to_be_visible()
    expect(prosumer.get_by_test_id("stPlotlyChart")).to_have_count(0)  # staff only
    _shoot(prosumer, "certificates-prosumer", tmp_path)


def test_logout_and_end_sessions_end_the_login_everywhere(
    dashboard_url: str, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    _log_in(page, dashboard_url, "ops")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookie = _assert_cookie_not_url(page)
    copied_url = page.url
    second_tab = context.new_page()
    second_tab.goto(f"{dashboard_url}/events")
    expect(second_tab.get_by_role("heading", name="Events")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    second_tab.reload()
    expect(second_tab.get_by_label("Username")).to_be_visible()
    # A fresh browser with the copied URL, and one with a stolen copy of the cookie.
    for stolen in (None, cookie):
        fresh = browser.new_context()  # type: ignore[attr-defined]
        if stolen is not None:
            fresh.add_cookies([{k: stolen[k] for k in ("name", "value", "domain", "path")}])
        other = fresh.new_page()
        other.goto(copied_url)
        expect(other.get_by_label("Username")).to_be_visible()
        fresh.close()

    # An admin ends the sessions of a user whose Live readings page is open: it logs out
    # by itself (the auto-refresh re-checks the session), with no click.
    _log_in(page, dashboard_url, "alice")
    page.get_by_role("link", name="Live readings").click()
    expect(page.get_by_role("heading", name="Live readings")).to_be_visible()
    admin = browser.new_page()  # type: ignore[attr-defined]
    admin.set_default_timeout(WAIT_MS)
    _log_in(admin, dashboard_url, "root")
    admin.get_by_role("link", name="Meters & users").click()
    admin.get_by_role("tab", name="Users").click()
    admin.get_by_role("button", name="End sessions of alice").click()
    expect(admin.get_by_text("session(s) of")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_visible()
    context.close()
