"""Login against the users table, a session that survives a refresh, logout."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from core.auth import issue_token
from core.db.models import User
from tests.factories import DEFAULT_PASSWORD, NOW, make_user
from tests.pages.conftest import ROOT, SECRET, TIMEOUT_SECS, Dashboard


def _fresh(query_params: dict[str, str] | None = None) -> AppTest:
    """A new browser tab: empty session state, only what the URL carries."""
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
    assert "session" not in at.query_params


def test_login_lands_on_the_role_home_and_survives_a_refresh(dashboard: Dashboard) -> None:
    at = _log_in(dashboard.open(None), "root", DEFAULT_PASSWORD)
    assert [t.value for t in at.title] == ["Overview"]
    token = at.query_params["session"]
    assert token
    refreshed = _fresh({"session": token})  # a browser refresh keeps only the URL
    assert [t.value for t in refreshed.title] == ["Overview"]
    prosumer = _log_in(dashboard.open(None), "alice", DEFAULT_PASSWORD)
    assert [t.value for t in prosumer.title] == ["My wallet"]


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


def test_a_tampered_or_expired_token_asks_to_log_in_again(dashboard: Dashboard) -> None:
    at = _fresh({"session": dashboard.token("root")[:-2] + "xx"})
    assert at.text_input(key="login.username")
    assert "invalid session token" in at.warning[0].value
    expired = issue_token(dashboard.seeded.users["root"], SECRET, ttl_secs=60,
                          now=NOW - timedelta(days=400)).access_token  # fmt: skip
    at = _fresh({"session": expired})
    assert "expired" in at.warning[0].value


def test_a_disabled_user_is_logged_out_at_the_next_click(dashboard: Dashboard) -> None:
    at = dashboard.open("bob")
    assert [t.value for t in at.title] == ["My wallet"]
    with dashboard.app.sessions() as session:
        session.execute(update(User).where(User.username == "bob").values(disabled=True))
        session.commit()
    at.run()
    assert at.text_input(key="login.username")
    assert "disabled" in at.warning[0].value


def test_logout_forgets_the_session(dashboard: Dashboard) -> None:
    at = dashboard.open("ops")
    assert at.query_params["session"]
    at.sidebar.button(key="auth.logout").click().run()
    assert at.text_input(key="login.username")
    assert "session" not in at.query_params


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
    assert at.query_params["session"]


def test_oidc_without_an_account_is_told_what_to_do(dashboard: Dashboard) -> None:
    at = _oidc({"is_logged_in": True, "email": "stranger@example.com"})
    assert "No enabled dashboard account for stranger@example.com" in at.warning[0].value
    logged_out = _oidc({"is_logged_in": False})
    assert logged_out.button(key="login.sso").label == "Log in with SSO"
