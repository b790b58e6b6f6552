"""Logging in and out of the dashboard: the form, the throttle, SSO, the sidebar.

A login goes through the same use case as the API's (core.sessions.log_in) and the
same throttle (core.login_throttle: per client address and per username, the
address from serving.client_address, X-Forwarded-For only from FORWARDED_ALLOW_IPS).
Logout ends the session on the server, so every tab and every copy of the cookie
is logged out with it.

With an [auth] section in .streamlit/secrets.toml, "Log in with SSO" uses st.login
(OIDC); the identity's email must be the username of an enabled users row.
"""

from __future__ import annotations

import streamlit as st

from core import views
from core.auth import InvalidToken, decode_token
from core.bootstrap import App
from core.db.models import SessionKind, User
from core.errors import DomainError
from core.login_throttle import LoginThrottle
from core.sessions import end_session, log_in, policy_of, start_session
from pages.common import session, ui
from serving.client_address import TrustedProxies, client_address

THROTTLE_KEY = "login_throttle"  # in App.extras: one throttle per dashboard process
LOGGED_OUT_KEY = "auth.logged_out"


def login_form(app: App) -> None:
    """Username and password (or SSO when OIDC is configured); reruns once logged in,
    on the page the browser asked for."""
    st.title("GridTokenX Tokenization Console")
    notice = st.session_state.get(session.NOTICE_KEY)
    if notice:
        st.warning(notice)
    with st.form("login", border=True):
        st.subheader("Log in")
        username = st.text_input("Username", key="login.username")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Log in", type="primary", key="login.submit")
    if submitted and login(app, username, password):
        st.rerun()
    if oidc_configured() and st.button("Log in with SSO", key="login.sso"):
        st.login()
    with ui.reading(app) as reading:
        anyone = views.any_user(reading)
    if not anyone:
        st.info(
            "No users yet: the API creates the first admin when it starts (`make run`, or "
            "`python -m api` on this DATABASE_URL) and prints the password once."
        )
    st.caption(
        "The first admin is created at first start (`make run` prints the password, also "
        "saved in DATA_DIR/secrets/admin_password). Admins create other users on the "
        "Meters & users page."
    )


def login(app: App, username: str, password: str) -> bool:
    try:
        throttle(app).acquire(browser_address(app), username)
        with app.sessions() as db:
            token = log_in(
                db,
                username,
                password,
                ui.secret_key(app),
                kind=SessionKind.DASHBOARD,
                policy=policy_of(app.settings.app),
                now=ui.now(),
            )
    except DomainError as exc:
        st.error(exc.message)
        return False
    session.remember(token.access_token)
    return True


def throttle(app: App) -> LoginThrottle:
    found = app.extras.get(THROTTLE_KEY)
    if found is None:
        found = app.extras.setdefault(THROTTLE_KEY, LoginThrottle())
    return found  # type: ignore[no-any-return]


def browser_address(app: App) -> str:
    """This browser's address: the WebSocket's peer, or the client a trusted proxy names."""
    peer = st.context.ip_address
    if not isinstance(peer, str) or not peer:
        peer = "127.0.0.1"  # Streamlit reports loopback as None
    forwarded = list(st.context.headers.get_all("X-Forwarded-For"))
    proxies = TrustedProxies.parse(app.settings.app.forwarded_allow_ips)
    return client_address(peer, forwarded, proxies)


def logout(app: App, user: User) -> None:
    """End this login everywhere (its row is revoked), not only in this browser."""
    token = st.session_state.get(session.TOKEN_KEY)
    if token:
        try:
            claims = decode_token(token, ui.secret_key(app), now=ui.now())
        except InvalidToken:
            claims = None
        if claims is not None:
            with app.sessions() as db:
                end_session(db, claims.session_id, now=ui.now(), by=user.username)
    session.forget()
    if token:
        st.session_state[session.DEAD_COOKIE_KEY] = token  # no "has ended" notice for it
    st.session_state[LOGGED_OUT_KEY] = True
    st.rerun()


def after_logout() -> None:
    """On the run after a logout: drop the cookie (and the SSO identity) in the browser."""
    if st.session_state.pop(LOGGED_OUT_KEY, False):
        session.clear_cookie(sso=oidc_configured() and bool(st.user.is_logged_in))


def oidc_configured() -> bool:
    try:
        return st.secrets.load_if_toml_exists() and "auth" in st.secrets
    except Exception:  # an unreadable secrets.toml means "no OIDC", not a crash
        return False


def token_for_sso(app: App) -> str | None:
    """A new session for the OIDC identity (its email is a username, any case).

    Only when the browser has no session cookie: a cookie whose session has ended
    (logout, an admin, expiry) must not be renewed by a lingering SSO identity, so
    the browser is sent to drop both and the user signs in with SSO afresh.
    """
    if not oidc_configured() or not st.user.is_logged_in:
        return None
    if st.session_state.get(LOGGED_OUT_KEY):
        return None  # just logged out: the identity is being dropped (after_logout)
    if session.browser_cookie() is not None:
        session.clear_cookie(sso=True)
        return None
    email = str(st.user.get("email") or "").strip()
    with ui.reading(app) as reading:
        user = views.user_for_email(reading, email)
    if user is None or user.disabled:
        st.session_state[session.NOTICE_KEY] = (
            f"No enabled dashboard account for {email or 'this identity'}: "
            "ask an admin to create a user whose username is that email."
        )
        return None
    with app.sessions() as db:
        token = start_session(
            db,
            user,
            ui.secret_key(app),
            kind=SessionKind.DASHBOARD,
            policy=policy_of(app.settings.app),
            now=ui.now(),
        ).access_token
    session.remember(token)
    return token


def sidebar(app: App, user: User) -> None:
    with st.sidebar:
        st.caption(f"Logged in as **{user.username}** ({user.role})")
        if st.button("Log out", key="auth.logout", icon=":material/logout:"):
            logout(app, user)
