"""Login, logout and a session that survives a browser refresh.

Session state dies with the browser tab's websocket, so the signed, expiring
session token (core.auth, the same HS256 token the API issues, signed with
API_SECRET_KEY) is also kept in the URL as `?session=...`; a refresh reads it back
and re-checks it. The user row is re-read on every run, so disabling a user or
changing their role applies at their next click. Trade-off (docs/DASHBOARD.md):
the URL carries a bearer token until it expires; logging out forgets it here but
cannot revoke a copy.

With an [auth] section in .streamlit/secrets.toml, "Log in with SSO" uses st.login
(OIDC); the identity's email must be the username of an enabled users row.
"""

from __future__ import annotations

import streamlit as st

from core import views
from core.auth import InvalidToken, authenticate, decode_token, issue_token
from core.bootstrap import App
from core.db.models import Role, User
from core.errors import DomainError
from pages.common import ui
from pages.common.registry import BY_URL

QUERY_PARAM = "session"
TOKEN_KEY = "auth.token"
NOTICE_KEY = "auth.notice"
JUST_LOGGED_IN_KEY = "auth.just_logged_in"


def restore(app: App) -> User | None:
    """The logged-in user from this session, the URL's token or an OIDC identity."""
    token = st.session_state.get(TOKEN_KEY) or st.query_params.get(QUERY_PARAM)
    if not token and oidc_configured() and st.user.is_logged_in:
        token = _token_for_oidc(app)
    if not token:
        return None
    try:
        claims = decode_token(token, ui.secret_key(app))
    except InvalidToken as exc:
        forget(notice=exc.message)
        return None
    with ui.reading(app) as session:
        user = session.get(User, claims.user_id)
    if user is None or user.disabled:
        forget(notice="this account is disabled; ask an admin")
        return None
    st.session_state[TOKEN_KEY] = token
    # Page switches drop query parameters: put the token back so a refresh keeps the login.
    if st.query_params.get(QUERY_PARAM) != token:
        st.query_params[QUERY_PARAM] = token
    return user


def viewer_for(app: App, url_path: str) -> User:
    """The page's guard: the logged-in user if their role may open this page.

    Every page is registered for every user so its URL resolves; this check, made by
    the page itself, is what keeps a hidden page's URL from rendering for the wrong role.
    """
    user = restore(app)
    if user is None:
        login_form(app)
        st.stop()
    spec = BY_URL[url_path]
    if Role(user.role) not in spec.roles:
        allowed = " or ".join(sorted(role.value for role in spec.roles))
        st.error(f"Refused: {spec.title} is for {allowed} only; your role is {user.role}.")
        st.stop()
    return user


def login_form(app: App) -> None:
    """Username and password (or SSO when OIDC is configured); reruns once logged in,
    on the page the browser asked for."""
    st.title("GridTokenX Tokenization Console")
    notice = st.session_state.get(NOTICE_KEY)
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
    with ui.reading(app) as session:
        anyone = views.any_user(session)
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
        with app.sessions() as session:
            user = authenticate(session, username, password)
    except DomainError as exc:
        st.error(exc.message)
        return False
    _remember(issue_token(user, ui.secret_key(app)).access_token)
    return True


def _remember(token: str) -> None:
    st.session_state[TOKEN_KEY] = token
    st.session_state[JUST_LOGGED_IN_KEY] = True
    st.session_state.pop(NOTICE_KEY, None)
    st.query_params[QUERY_PARAM] = token


def just_logged_in() -> bool:
    """True once, on the run right after a login."""
    return bool(st.session_state.pop(JUST_LOGGED_IN_KEY, False))


def forget(*, notice: str | None = None) -> None:
    st.session_state.pop(TOKEN_KEY, None)
    st.query_params.pop(QUERY_PARAM, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice


def oidc_configured() -> bool:
    try:
        return st.secrets.load_if_toml_exists() and "auth" in st.secrets
    except Exception:  # an unreadable secrets.toml means "no OIDC", not a crash
        return False


def _token_for_oidc(app: App) -> str | None:
    """Map the OIDC identity's email to a users row (username, case-insensitive)."""
    email = str(st.user.get("email") or "").strip()
    with ui.reading(app) as session:
        user = views.user_for_email(session, email)
    if user is None or user.disabled:
        st.session_state[NOTICE_KEY] = (
            f"No enabled dashboard account for {email or 'this identity'}: "
            "ask an admin to create a user whose username is that email."
        )
        return None
    token = issue_token(user, ui.secret_key(app)).access_token
    _remember(token)
    return token


def logout() -> None:
    forget()
    if oidc_configured() and st.user.is_logged_in:
        st.logout()
    st.rerun()


def sidebar(user: User) -> None:
    with st.sidebar:
        st.caption(f"Logged in as **{user.username}** ({user.role})")
        if st.button("Log out", key="auth.logout", icon=":material/logout:"):
            logout()
