"""The dashboard's HTTP layer around Streamlit: limits, and what Streamlit does not guard.

app.py defines `app = st.App(...)` with `dashboard_middleware()` and
`dashboard_routes()` (the login cookie's, pages.common.session_cookie), so
`streamlit run app.py`, `python -m pages` and any ASGI server serve the same
application:

- every request body is capped (serving.body_limit), work in progress is capped
  (serving.in_flight), `/_stcore/health` is always answered;
- `/_stcore/metrics` (Streamlit's own: sessions, caches, memory) only to loopback.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from core.config import AppSettings, ConfigError, load_settings
from pages.common.session_cookie import session_routes
from serving.body_limit import BodyLimit
from serving.client_address import TrustedProxies
from serving.in_flight import InFlightLimit

# The dashboard takes no uploads; its HTTP bodies are tiny (Streamlit talks over its
# WebSocket, whose messages server.maxMessageSize bounds).
BODY_LIMIT = 1024 * 1024
HEALTH_PATH = "/_stcore/health"
METRICS_PATH = "/_stcore/metrics"
_LOOPBACK = ("127.", "::1")


def _json(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def app_settings() -> AppSettings:
    """The environment's settings; defaults when invalid (the pages report the error)."""
    try:
        return load_settings().app
    except ConfigError:
        return AppSettings.model_construct()


class LoopbackOnly:
    """Answers 403 to `paths` unless the peer is on this host."""

    def __init__(self, app: Any, *, paths: tuple[str, ...]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            host = (scope.get("client") or ("",))[0] or ""
            if not host.startswith(_LOOPBACK):
                body = _json("forbidden", "served to loopback clients only")
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@functools.cache
def dashboard_middleware() -> list[Middleware]:
    """Built once per process: app.py constructs its st.App on every run of the script."""
    settings = app_settings()
    return [
        Middleware(
            BodyLimit,
            default_limit=BODY_LIMIT,
            too_large=lambda limit: _json("payload_too_large", f"the body exceeds {limit} bytes"),
        ),
        Middleware(
            InFlightLimit,
            max_requests=settings.http_max_in_flight,
            max_websockets=settings.http_max_websockets,
            busy=lambda: _json("server_busy", "too many requests in progress; retry shortly"),
            exempt=(HEALTH_PATH,),
        ),
        Middleware(LoopbackOnly, paths=(METRICS_PATH,)),
    ]


@functools.cache
def dashboard_routes() -> list[BaseRoute]:
    """Set and clear the HttpOnly login cookie (Streamlit's script cannot)."""
    return list(session_routes(TrustedProxies.parse(app_settings().forwarded_allow_ips)))
