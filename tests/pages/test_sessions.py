"""Dashboard logins are server-side sessions: ended by an admin, a disable, a password
change, inactivity or age, and throttled like the API's logins.

Time moves through the pages' pinned clock (session state "clock.now"); nothing sleeps.
"""

from __future__ import annotations

import functools
from datetime import timedelta

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.db.models import LoginSession, User
from core.login_throttle import LoginThrottle
from core.users import change_password, set_user_disabled
from pages.common import login
from pages.common.session import AUTOMATIC_KEY
from pages.common.ui import CLOCK_KEY
from tests.factories import DEFAULT_PASSWORD, NOW
from tests.pages.conftest import Dashboard


def logged_out(at: AppTest) -> bool:
    return any(widget.key == "login.username" for widget in at.text_input)


def at_time(at: AppTest, when) -> AppTest:
    at.session_state[CLOCK_KEY] = when
    return at.run()


def test_an_admin_ends_a_users_sessions_from_the_users_page(dashboard: Dashboard) -> None:
    bobs_tab = dashboard.open("bob")
    assert not logged_out(bobs_tab)
    admin = dashboard.open("root", "admin")
    admin.selectbox(key="admin.user_toggle_name").select("bob")
    admin.button(key="admin.user_end_sessions").click().run()
    assert "Ended 1 session(s) of bob." in admin.success[0].value
    assert logged_out(bobs_tab.run())
    assert "ended (ended_by_admin)" in bobs_tab.warning[0].value
    assert not logged_out(admin.run())  # the admin's own session goes on


def test_reenabling_a_user_revives_no_session(dashboard: Dashboard) -> None:
    tab = dashboard.open("bob")
    with dashboard.app.sessions() as session:
        set_user_disabled(session, "bob", True, by="root", now=NOW)
        set_user_disabled(session, "bob", False, by="root", now=NOW)
    assert logged_out(tab.run())
    assert "ended (disabled)" in tab.warning[0].value


def test_a_password_change_ends_the_dashboard_session(dashboard: Dashboard) -> None:
    tab = dashboard.open("alice")
    with dashboard.app.sessions() as session:
        alice = session.get(User, dashboard.seeded.users["alice"].id)
        change_password(session, alice, DEFAULT_PASSWORD, "a-new-long-password", now=NOW)
    assert logged_out(tab.run())
    assert "ended (password_changed)" in tab.warning[0].value


def test_idle_for_the_limit_logs_out_and_activity_keeps_the_login(dashboard: Dashboard) -> None:
    tab = dashboard.open("ops")
    assert not logged_out(at_time(tab, NOW + timedelta(minutes=29)))
    # That click counted: 29 minutes after it the login still holds.
    assert not logged_out(at_time(tab, NOW + timedelta(minutes=58)))
    assert logged_out(at_time(tab, NOW + timedelta(minutes=88)))
    assert "inactivity" in tab.warning[0].value


def test_the_absolute_lifetime_ends_even_an_active_login(dashboard: Dashboard) -> None:
    tab = dashboard.open("ops")
    moment = NOW
    while moment < NOW + timedelta(hours=8) - timedelta(minutes=20):
        moment += timedelta(minutes=20)
        assert not logged_out(at_time(tab, moment)), moment
    assert logged_out(at_time(tab, NOW + timedelta(hours=8)))
    assert "expired" in tab.warning[0].value


def test_last_seen_is_written_at_most_once_a_minute(dashboard: Dashboard) -> None:
    tab = dashboard.open("ops")

    def last_seen():
        with dashboard.app.sessions() as session:
            rows = session.scalars(select(LoginSession).order_by(LoginSession.created_at)).all()
            return rows[-1].last_seen_at

    at_time(tab, NOW + timedelta(seconds=30))
    assert last_seen() == NOW
    at_time(tab, NOW + timedelta(seconds=90))
    assert last_seen() == NOW + timedelta(seconds=90)


@pytest.fixture
def frozen_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dashboard's throttle on a clock that stands still: no refill during the test."""
    monkeypatch.setattr(login, "LoginThrottle", functools.partial(LoginThrottle, clock=lambda: 0.0))


@pytest.mark.usefixtures("frozen_throttle")
def test_the_login_form_is_throttled_like_the_api(dashboard: Dashboard) -> None:
    """35 wrong passwords from one browser: the last ones are refused unchecked, and the
    right password is refused too until the bucket refills."""
    at = dashboard.open(None)
    errors = []
    for attempt in range(35):
        at.text_input(key="login.username").input(f"guess{attempt}")
        at.text_input(key="login.password").input("wrong-password")
        at.button(key="login.submit").click().run()
        errors.append(at.error[0].value)
    assert errors[:30] == ["wrong username or password"] * 30
    assert all("too many login attempts" in error for error in errors[30:]), errors[29:]
    at.text_input(key="login.username").input("root")
    at.text_input(key="login.password").input(DEFAULT_PASSWORD)
    at.button(key="login.submit").click().run()
    assert logged_out(at)
    assert "too many login attempts" in at.error[0].value


@pytest.mark.usefixtures("frozen_throttle")
def test_one_username_is_throttled_on_its_own(dashboard: Dashboard) -> None:
    at = dashboard.open(None)
    errors = []
    for _ in range(11):
        at.text_input(key="login.username").input("root")
        at.text_input(key="login.password").input("wrong-password")
        at.button(key="login.submit").click().run()
        errors.append(at.error[0].value)
    assert errors[:10] == ["wrong username or password"] * 10
    assert "too many login attempts for this username" in errors[10]


def test_an_automatic_rerun_does_not_keep_the_login_alive(dashboard: Dashboard) -> None:
    """A page rerun for new events (pages.common.refresh) is not a click."""
    tab = dashboard.open("ops")
    for minutes in (10, 20, 29):
        tab.session_state[AUTOMATIC_KEY] = True
        assert not logged_out(at_time(tab, NOW + timedelta(minutes=minutes)))
    tab.session_state[AUTOMATIC_KEY] = True
    assert logged_out(at_time(tab, NOW + timedelta(minutes=30)))
    assert "inactivity" in tab.warning[0].value
