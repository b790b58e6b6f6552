"""Login against the users table, a session that survives a refresh (its HttpOnly
cookie), logout that ends it everywhere, SSO."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from core.db.models import User
from core.sessions import end_user_sessions
from core.users import get_user
from tests.factories import DEFAULT_PASSWORD, NOW, make_user
from tests.pages.conftest import ROOT, TIMEOUT_SECS, BrowserCookies, Dashboard


def _fresh(query_params: dict[str, str] | None = None) -> AppTest:
    """A new browser tab: empty session state, only what the URL (and cookie) carry."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_SECS)
    at.session_state["clock.now"] = NOW
    at.query_params.update(query_params or {})
    return at.run()


def _log_in(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login.username").input(username)
    at.text_input(key="login.password").input(password)
    return at.button(key="login.submit").click().run()


def test_logged_out_sees_only_the_login_form(dashboard: Dashboard) -> None:
    at = dashboard.open(None)
    assert at.title[0].value == "GridTokenX Tokenization Console"
    assert at.text_input(key="login.username")
    assert not at.metric and not at.dataframe


def test_wrong_password_is_refused(dashboard: Dashboard) -> None:
    at = _log_in(dashboard.open(None), "root", "not-the-password")
    assert "wrong username or password" in at.error[0].value
    assert not at.html


def test_login_lands_on_the_role_home_and_survives_a_refresh(
    dashboard: Dashboard, cookies: BrowserCookies
) -> None:
    at = _log_in(dashboard.open(None), "root", DEFAULT_PASSWORD)
    assert [t.value for t in at.title] == ["Overview"]
    assert not at.query_params  # nothing in the URL
    token = cookies.take_handoff(at)
    cookies.value = token
    refreshed = _fresh()  # a browser refresh: a new session that only has the cookie
    assert [t.value for t in refreshed.title] == ["Overview"]
    cookies.value = None
    prosumer = _log_in(dashboard.open(None), "alice", DEFAULT_PASSWORD)
    assert [t.value for t in prosumer.title] == ["My wallet"]


def test_a_copied_url_logs_nobody_in(dashboard: Dashboard, cookies: BrowserCookies) -> None:
    at = _log_in(dashboard.open(None, page="live"), "root", DEFAULT_PASSWORD)
    html = cookies.handoff_html(at)
    assert "next=%2Flive" in html
    # The only URL that carried anything was the one-time hand-off: used, it is dead.
    url = html.split('replace("', 1)[1].split('"', 1)[0]
    assert cookies.redeem(url) is not None
    assert cookies.redeem(url) is None
    assert _fresh().text_input(key="login.username")


@pytest.mark.parametrize("username", ["admin\x00", "a" * 500])
def test_a_hostile_username_is_a_wrong_login_not_a_traceback(
    dashboard: Dashboard, username: str
) -> None:
    at = _log_in(dashboard.open(None), username, "whatever")
    assert not at.exception
    assert "wrong username or password" in at.error[0].value


def test_visitors_never_see_error_details() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_a_tampered_or_expired_cookie_asks_to_log_in_again(
    dashboard: Dashboard, cookies: BrowserCookies
) -> None:
    cookies.value = dashboard.token("root")[:-2] + "xx"
    at = _fresh()
    assert at.text_input(key="login.username")
    assert "invalid session token" in at.warning[0].value
    cookies.value = dashboard.token("root", ttl_secs=60, now=NOW - timedelta(days=400))
    assert "expired" in _fresh().warning[0].value


def test_a_disabled_user_is_logged_out_at_the_next_click(dashboard: Dashboard) -> None:
    at = dashboard.open("bob")
    assert [t.value for t in at.title] == ["My wallet"]
    with dashboard.app.sessions() as session:
        session.execute(update(User).where(User.username == "bob").values(disabled=True))
        session.commit()
    at.run()
    assert at.text_input(key="login.username")
    assert "disabled" in at.warning[0].value


def test_logout_ends_the_session_everywhere(dashboard: Dashboard, cookies: BrowserCookies) -> None:
    at = _log_in(dashboard.open(None), "ops", DEFAULT_PASSWORD)
    cookies.value = cookies.take_handoff(at)
    other_tab = _fresh()
    assert [t.value for t in other_tab.title] == ["Overview"]
    at.sidebar.button(key="auth.logout").click().run()
    assert at.text_input(key="login.username")
    assert not at.warning  # logging out is not news
    assert "/_session/end" in at.html[-1].proto.body  # the browser drops the cookie
    assert other_tab.run().text_input(key="login.username")  # the same cookie, elsewhere
    assert "ended (logout)" in other_tab.warning[0].value
    assert _fresh().text_input(key="login.username")  # a copy of the cookie: dead


OIDC = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "s",
        "client_id": "c",
        "client_secret": "s",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    }
}


def _oidc(identity: dict[str, object]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT_SECS)
    at.session_state["clock.now"] = NOW
    at.secrets.update(OIDC)
    at.user = identity
    return at.run()


def test_oidc_identity_maps_to_a_users_row_by_email(dashboard: Dashboard) -> None:
    with dashboard.app.sessions() as session:
        make_user(session, "ana@example.com", role="operator")
    at = _oidc({"is_logged_in": True, "email": "Ana@Example.com"})
    assert [t.value for t in at.title] == ["Overview"]
    assert not at.query_params
    at.sidebar.button(key="auth.logout").click().run()
    assert "/_session/end?sso=1" in at.html[-1].proto.body  # and drop the SSO identity


def test_an_sso_identity_does_not_renew_an_ended_session(
    dashboard: Dashboard, cookies: BrowserCookies
) -> None:
    with dashboard.app.sessions() as session:
        make_user(session, "ana@example.com", role="operator")
    at = _oidc({"is_logged_in": True, "email": "ana@example.com"})
    cookies.value = cookies.take_handoff(at)
    with dashboard.app.sessions() as session:
        end_user_sessions(session, get_user(session, "ana@example.com"), now=NOW, by="root")
    again = _oidc({"is_logged_in": True, "email": "ana@example.com"})
    assert again.text_input(key="login.username")
    assert "/_session/end?sso=1" in again.html[-1].proto.body


def test_oidc_without_an_account_is_told_what_to_do(dashboard: Dashboard) -> None:
    at = _oidc({"is_logged_in": True, "email": "stranger@example.com"})
    assert "No enabled dashboard account for stranger@example.com" in at.warning[0].value
    logged_out = _oidc({"is_logged_in": False})
    assert logged_out.button(key="login.sso").label == "Log in with SSO"
