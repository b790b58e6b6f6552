"""The dashboard under AppTest over a seeded database, on SQLite and PostgreSQL.

The app is pointed at the test database through the environment (DATABASE_URL,
DATA_DIR, API_SECRET_KEY), exactly as `streamlit run app.py` would be; "now" is
pinned in session state so "today" is the same on every run. The RPC URL names a
closed port: the chain reads as unavailable unless a test stubs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.auth import issue_token
from core.bootstrap import App, bootstrap
from core.config import Settings
from tests.factories import NOW
from tests.pages.seed import Seeded, seed_dashboard

ROOT = Path(__file__).resolve().parents[2]
SECRET = "dashboard-test-secret-of-at-least-32-bytes"
CLOSED_RPC = "http://127.0.0.1:9"
TIMEOUT_SECS = 30


@dataclass
class Dashboard:
    app: App
    seeded: Seeded

    def token(self, username: str) -> str:
        user = self.seeded.users[username]
        return issue_token(user, SECRET, now=None).access_token

    def open(self, username: str | None, page: str | None = None) -> AppTest:
        """The app as `username` sees it (None: logged out), on `page` if given."""
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_SECS)
        at.session_state["clock.now"] = NOW
        if username is not None:
            at.session_state["auth.token"] = self.token(username)
        at.run()
        if page is not None:
            at.switch_page(page).run()
        return at


@pytest.fixture
def dashboard(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Dashboard]:
    settings = make_settings(
        DATABASE_URL=database_url, API_SECRET_KEY=SECRET, SOLANA_RPC_URL=CLOSED_RPC
    )
    app = bootstrap(settings)
    with app.sessions() as session:
        seeded = seed_dashboard(session)
    # Caches are process-wide: one test's app or chain reads must not leak into the next.
    st.cache_data.clear()
    st.cache_resource.clear()
    yield Dashboard(app=app, seeded=seeded)
    st.cache_resource.clear()
    app.close()
