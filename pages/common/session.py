"""Who is logged in in this browser: the one place pages ask (`restore`, `viewer_for`).

A login is a server-side session (core.sessions, kind "dashboard"); its token lives
in this tab's session state and in an HttpOnly cookie (pages.common.session_cookie)
so a refresh or a new tab keeps the login. No token is ever in a URL: a copied
link carries nothing. Every run re-checks the session row, so logout, disabling
the user, a password change, an admin's "end sessions", SESSION_MAX_HOURS and
SESSION_IDLE_MINUTES without a click end the login at the next run; auto-refreshing
fragments re-check too (through `ui.reading`), and neither they nor the reruns they
ask for (`rerun_automatically`) count as activity.

The login form, logout and SSO are in pages.common.login.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import streamlit as st

from core.auth import InvalidToken, decode_token
from core.bootstrap import App
from core.db.models import Role, User
from core.sessions import LiveSession, check_session, touch_session
from core.views import read_session
from pages.common import session_cookie, ui
from pages.common.registry import BY_URL

TOKEN_KEY = "auth.token"
NOTICE_KEY = "auth.notice"
JUST_LOGGED_IN_KEY = "auth.just_logged_in"
HANDOFF_KEY = "auth.handoff"  # a one-time code waiting to become the cookie
DEAD_COOKIE_KEY = "auth.dead_cookie"  # a cookie already found dead: no second notice
CHECKED_AT_KEY = "auth.checked_at"
AUTOMATIC_KEY = "auth.automatic_run"  # the next run was asked for by a refresh, not a click
# Fragments re-check the session at most this often (each check is one primary-key read).
RECHECK_SECS = 1.0


def restore(app: App, *, activity: bool = True) -> User | None:
    """The logged-in user of this browser, or None (with a notice when a login ended).

    `activity` False checks the session without extending its idle time: app.py's call
    (once per run) records the activity, unless the run was automatic; a page's guard
    and the fragments' checks do not.
    """
    token = st.session_state.get(TOKEN_KEY)
    live = _live(app, token) if token else None
    if live is None:
        token = browser_cookie()
        live = _live(app, token) if token else None
    if live is None:
        from pages.common.login import token_for_sso  # SSO identity, no cookie yet

        token = token_for_sso(app)
        live = _live(app, token) if token else None
    if live is None or token is None:
        return None
    now = ui.now()
    if activity and st.session_state.pop(AUTOMATIC_KEY, False):
        activity = False
    if activity and live.stale:
        with app.sessions() as session:
            touch_session(session, live.session_id, now=now)
    st.session_state[TOKEN_KEY] = token
    st.session_state[CHECKED_AT_KEY] = time.monotonic()
    return live.user


def _live(app: App, token: str) -> LiveSession | None:
    now = ui.now()
    try:
        claims = decode_token(token, ui.secret_key(app), now=now)
        with read_session(app.engine) as session:
            return check_session(session, claims, now=now)
    except InvalidToken as exc:
        if token == st.session_state.get(TOKEN_KEY):
            forget(notice=exc.message)
        elif token == browser_cookie() and st.session_state.get(DEAD_COOKIE_KEY) != token:
            st.session_state[DEAD_COOKIE_KEY] = token
            st.session_state[NOTICE_KEY] = exc.message
        return None


def browser_cookie() -> str | None:
    """The session cookie the browser sent when this tab connected (None in AppTest)."""
    value = st.context.cookies.get(session_cookie.COOKIE_NAME)
    return value if isinstance(value, str) and value else None


def still_logged_in(app: App) -> None:
    """For auto-refreshing fragments: end the page when the session has ended meanwhile."""
    if TOKEN_KEY not in st.session_state:
        return
    checked = st.session_state.get(CHECKED_AT_KEY, 0.0)
    if time.monotonic() - checked < RECHECK_SECS:
        return
    if restore(app, activity=False) is None:
        st.rerun(scope="app")


def rerun_automatically() -> None:
    """Rerun the page for new data: unlike a click, it does not keep the login alive."""
    st.session_state[AUTOMATIC_KEY] = True
    st.rerun(scope="app")


def viewer_for(app: App, url_path: str) -> User:
    """The page's guard: the logged-in user if their role may open this page.

    Every page is registered for every user so its URL resolves; this check, made by
    the page itself, is what keeps a hidden page's URL from rendering for the wrong role.
    """
    user = restore(app, activity=False)  # app.py's restore of this run recorded it
    if user is None:
        from pages.common.login import login_form

        login_form(app)
        st.stop()
    spec = BY_URL[url_path]
    if Role(user.role) not in spec.roles:
        allowed = " or ".join(sorted(role.value for role in spec.roles))
        st.error(f"Refused: {spec.title} is for {allowed} only; your role is {user.role}.")
        st.stop()
    return user


def remember(token: str) -> None:
    """A login happened in this tab: keep its token here and, next, in the cookie."""
    st.session_state[TOKEN_KEY] = token
    st.session_state[JUST_LOGGED_IN_KEY] = True
    st.session_state[HANDOFF_KEY] = session_cookie.issue_handoff(token)
    st.session_state.pop(NOTICE_KEY, None)


def just_logged_in() -> bool:
    """True once, on the run right after a login."""
    return bool(st.session_state.pop(JUST_LOGGED_IN_KEY, False))


def keep_in_cookie(url_path: str) -> None:
    """Once after a login: send the browser through the route that sets the cookie,
    back to this page (`url_path`) with its query parameters."""
    code = st.session_state.pop(HANDOFF_KEY, None)
    if not code:
        return
    query = urlencode(st.query_params.to_dict())
    target = session_cookie.start_url(code, f"/{url_path}" + (f"?{query}" if query else ""))
    st.html(
        f"<script>window.location.replace({json.dumps(target)});</script>",
        unsafe_allow_javascript=True,
    )


def forget(*, notice: str | None = None) -> None:
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state.pop(HANDOFF_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice


def clear_cookie(*, sso: bool) -> None:
    """Send the browser through the route that deletes the cookie (and SSO identity)."""
    target = session_cookie.END_PATH + ("?sso=1" if sso else "")
    st.html(
        f"<script>window.location.replace({json.dumps(target)});</script>",
        unsafe_allow_javascript=True,
    )


ui.login_check = still_logged_in
