"""The dashboard's login cookie: two HTTP routes beside Streamlit that set and clear it.

A Streamlit script talks to the browser over a WebSocket and cannot set a cookie,
least of all an HttpOnly one. So after a login the script hands its session token
to this module under a one-time code (`issue_handoff`) and sends the browser to
`START_PATH?code=...&next=/page`; that route trades the code for the token, sets it
as an HttpOnly, SameSite=Strict cookie and redirects to the page. The page's new
run reads the cookie (st.context.cookies: the browser sends it with the WebSocket
handshake). `END_PATH` clears the cookie on logout.

Nothing replayable is ever in a URL: a code works once, within HANDOFF_TTL_SECS, in
this process (`python -m pages` is one process; behind a load balancer, keep a
browser on one dashboard process). The cookie is only the session token: revoking
the session (core.sessions) kills it wherever it was copied to.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from serving.client_address import TrustedProxies

COOKIE_NAME = "gtx_session"
START_PATH = "/_session/start"
END_PATH = "/_session/end"
SSO_LOGOUT_PATH = "/auth/logout"  # Streamlit's, for st.login identities
HANDOFF_TTL_SECS = 60
_MAX_PENDING = 10_000


class Handoffs:
    """One-time codes for tokens, in process memory; only a code's hash is a key."""

    def __init__(
        self, ttl_secs: float = HANDOFF_TTL_SECS, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl_secs = ttl_secs
        self._clock = clock
        self._pending: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(24)
        now = self._clock()
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
            self._pending[_digest(code)] = (token, now + self.ttl_secs)
        return code

    def redeem(self, code: str) -> str | None:
        """The token once, while the code is fresh; None for anything else."""
        if not code or len(code) > 64:
            return None
        with self._lock:
            entry = self._pending.pop(_digest(code), None)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


handoffs = Handoffs()


def issue_handoff(token: str) -> str:
    return handoffs.issue(token)


def start_url(code: str, next_path: str) -> str:
    return f"{START_PATH}?{urlencode({'code': code, 'next': safe_next(next_path)})}"


def safe_next(path: str | None) -> str:
    """Only a path on this site: never `//host` or a scheme (no open redirect)."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x21 or ch == "\\" for ch in path) or len(path) > 512:
        return "/"
    return path


def session_routes(proxies: TrustedProxies) -> list[Route]:
    """The routes app.py mounts; `proxies` decide whose X-Forwarded-Proto is believed."""

    def secure(request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        peer = request.client.host if request.client else ""
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip()
        return proxies.trusts(peer) and forwarded.lower() == "https"

    async def start(request: Request) -> Response:
        token = handoffs.redeem(request.query_params.get("code", ""))
        response = _redirect(safe_next(request.query_params.get("next")))
        if token is not None:
            # No Max-Age: the browser forgets it when it closes; the server ends it sooner.
            response.set_cookie(
                COOKIE_NAME,
                token,
                httponly=True,
                samesite="strict",
                secure=secure(request),
                path="/",
            )
        return response

    async def end(request: Request) -> Response:
        # ?sso=1: then Streamlit's own route drops the SSO identity (st.logout's cookie).
        sso = request.query_params.get("sso") == "1"
        response = _redirect(SSO_LOGOUT_PATH if sso else "/")
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    return [Route(START_PATH, start, methods=["GET"]), Route(END_PATH, end, methods=["GET"])]


def _redirect(location: str) -> RedirectResponse:
    response = RedirectResponse(location, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
