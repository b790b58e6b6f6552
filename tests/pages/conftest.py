"""The dashboard under AppTest over a seeded database, on SQLite and PostgreSQL.

The app is pointed at the test database through the environment (DATABASE_URL,
DATA_DIR, API_SECRET_KEY), exactly as `streamlit run app.py` would be; "now" is
pinned in session state so "today" is the same on every run. The RPC URL names a
closed port: the chain reads as unavailable unless a test stubs it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from starlette.applications import Starlette
from streamlit.testing.v1 import AppTest

from core.bootstrap import App, bootstrap
from core.config import Settings, load_settings
from core.db.models import SessionKind
from pages.common import session as browser_session
from pages.common.session_cookie import COOKIE_NAME, START_PATH, session_routes
from serving.client_address import TrustedProxies
from tests.conftest import _APP_VARIABLES
from tests.factories import NOW, login_token
from tests.pages.seed import BACKENDS, Seeded, seed_dashboard, shared_database

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx (pinned) works the same.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SECRET = "dashboard-test-secret-of-at-least-32-bytes"
CLOSED_RPC = "http://127.0.0.1:9"
TIMEOUT_SECS = 30


@dataclass
class Dashboard:
    app: App
    seeded: Seeded

    def token(self, username: str, **kwargs: Any) -> str:
        """A dashboard session for `username` started at NOW (the pages' pinned clock)."""
        user = self.seeded.users[username]
        kwargs.setdefault("now", NOW)
        kwargs.setdefault("idle_secs", 30 * 60)
        with self.app.sessions() as session:
            return login_token(session, user, SECRET, kind=SessionKind.DASHBOARD, **kwargs)

    def open(self, username: str | None, page: str | None = None) -> AppTest:
        """The app as `username` sees it (None: logged out), on `page` (e.g. "live")."""
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_SECS)
        at.session_state["clock.now"] = NOW
        if username is not None:
            at.session_state["auth.token"] = self.token(username)
        at.run()
        if page is not None:
            at.switch_page(f"pages/screens/{page}.py").run()
        return at


class BrowserCookies:
    """The browser's side of the login cookie, for AppTest (which cannot send cookies).

    `value` is what the dashboard reads as the cookie (pages.common.session's
    browser_cookie is patched to return it). `redeem` follows a hand-off URL through
    the real cookie route (pages.common.session_cookie) and returns the cookie it sets.
    """

    def __init__(self) -> None:
        self.value: str | None = None
        routes = session_routes(TrustedProxies())
        self._http = TestClient(Starlette(routes=routes), follow_redirects=False)

    def handoff_html(self, at: AppTest) -> str:
        bodies = [html.proto.body for html in at.html if START_PATH in html.proto.body]
        assert len(bodies) == 1, [html.proto.body for html in at.html]
        return bodies[0]

    def redeem(self, url: str) -> str | None:
        self._http.cookies.clear()
        response = self._http.get(url)
        assert response.status_code == 303
        header = response.headers.get("set-cookie")
        if header is None:
            return None
        assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
        return response.cookies[COOKIE_NAME]

    def take_handoff(self, at: AppTest) -> str:
        url = self.handoff_html(at).split('replace("', 1)[1].split('"', 1)[0]
        token = self.redeem(url)
        assert token, "the hand-off set no cookie"
        return token


@pytest.fixture
def cookies(monkeypatch: pytest.MonkeyPatch) -> BrowserCookies:
    jar = BrowserCookies()
    monkeypatch.setattr(browser_session, "browser_cookie", lambda: jar.value)
    return jar


def frame(at: AppTest, column: str) -> Any:
    """The first table with `column` (AppTest does not expose a dataframe's key)."""
    for table in at.dataframe:
        if column in table.value.columns:
            return table.value
    raise AssertionError(f"no table with a {column!r} column")


def _open_dashboard(settings: Settings) -> Iterator[Dashboard]:
    app = bootstrap(settings)
    with app.sessions() as session:
        seeded = seed_dashboard(session)
    # Caches are process-wide: one test's app or chain reads must not leak into the next.
    st.cache_data.clear()
    st.cache_resource.clear()
    yield Dashboard(app=app, seeded=seeded)
    st.cache_resource.clear()
    app.close()


@pytest.fixture
def dashboard(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Dashboard]:
    """A fresh seeded world per test: for tests that change something."""
    yield from _open_dashboard(
        make_settings(DATABASE_URL=database_url, API_SECRET_KEY=SECRET, SOLANA_RPC_URL=CLOSED_RPC)
    )


@pytest.fixture(scope="module", params=BACKENDS)
def shared_dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """One seeded world per module and database, for tests that only read (most of
    them: a fresh PostgreSQL database per test costs more than the test)."""
    directory = tmp_path_factory.mktemp("shared-dashboard")
    with shared_database(request, directory) as url, pytest.MonkeyPatch.context() as env:
        for variable in [v for v in os.environ if v.startswith("TOKENIZATION_")]:
            env.delenv(variable)
        for variable in _APP_VARIABLES & set(os.environ):
            env.delenv(variable)
        for variable, value in {
            "DATABASE_URL": url,
            "DATA_DIR": str(directory / "data"),
            "API_SECRET_KEY": SECRET,
            "SOLANA_RPC_URL": CLOSED_RPC,
        }.items():
            env.setenv(variable, value)  # fmt: skip
        yield from _open_dashboard(load_settings())
