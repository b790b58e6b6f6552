"""The FastAPI application: `create_app()` builds it, its lifespan builds the core once.

`python -m api` serves `create_app` as a uvicorn factory. Tests pass their own
composition root (`core`), clock and monotonic clock. The WebSocket router lives
in api/ws.py (`router`), added here when that module exists.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
from fastapi import APIRouter, FastAPI

from api import errors
from api.body import MAX_BATCH_BODY_BYTES, MAX_READING_BODY_BYTES
from api.group_ingest import reading_group
from api.metrics import LatencyMiddleware, Metrics
from api.openapi import install_openapi
from api.routes import (
    admin,
    auth,
    bridge,
    certificates,
    costs,
    exports,
    gateways,
    ingest,
    ops,
    readings,
    telemetry,
)
from api.schemas import BatchIn, ReadingIn
from api.state import build_state, system_now
from core.bootstrap import App, bootstrap
from core.config import Settings, load_settings
from core.users import ensure_first_admin
from serving.body_limit import BodyLimit
from serving.in_flight import InFlightLimit

log = logging.getLogger("api")

DESCRIPTION = """Meter ingest and reading queries of the GridTokenX Tokenization Console.

Meters authenticate with their API key (`Authorization: Bearer <key>` or `X-API-Key`)
and sign each reading with ed25519 over
`gridtokenx-reading:v1:{meter_serial}:{unix_ms}:{kwh}` (kwh with exactly 6 decimals).
Users log in at `/api/auth/login` and send `Authorization: Bearer <token>`.
Every error is `{"error": {"code", "message", "field"?}}`. See docs/API.md.
"""


# Bodies of every other route (logins, users, meters, mint requests) are small JSON.
DEFAULT_BODY_LIMIT = 64 * 1024
BODY_LIMITS: dict[str, int] = {
    "/api/meters/submit-reading": MAX_READING_BODY_BYTES,
    "/api/meters/submit-batch": MAX_BATCH_BODY_BYTES,
}
ALWAYS_SERVED = ("/health",)


def _json(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Byte limits on every body and a cap on work in progress, outermost of all."""
    app.add_middleware(
        InFlightLimit,
        max_requests=settings.app.http_max_in_flight,
        max_websockets=settings.app.http_max_websockets,
        busy=lambda: _json(
            errors.error_body("server_busy", "too many requests in progress; retry shortly")
        ),
        exempt=ALWAYS_SERVED,
    )
    app.add_middleware(
        BodyLimit,
        default_limit=DEFAULT_BODY_LIMIT,
        limits=BODY_LIMITS,
        too_large=lambda limit: _json(
            errors.error_body("payload_too_large", f"the body exceeds {limit} bytes", "body")
        ),
    )


def _optional_routers() -> list[APIRouter]:
    """The WebSocket router, once api/ws.py exists (another issue builds it)."""
    if importlib.util.find_spec("api.ws") is None:
        return []
    return [importlib.import_module("api.ws").router]


def create_app(
    core: App | None = None,
    *,
    clock: Callable[[], datetime] = system_now,
    monotonic: Callable[[], float] = time.monotonic,
    config_ttl_secs: float = 1.0,
    create_first_admin: bool = True,
) -> FastAPI:
    """The API over `core` (tests) or over a core bootstrapped at startup (processes)."""
    settings = core.settings if core is not None else load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # bootstrap() refuses an un-migrated database with the migration command.
        # No ping per checkout: a dead connection is answered 503 once (api/errors.py).
        built = core or bootstrap(settings, pre_ping=False)
        try:
            if create_first_admin:
                _first_admin(built)
            state = build_state(
                built,
                metrics=metrics,
                clock=clock,
                monotonic=monotonic,
                config_ttl_secs=config_ttl_secs,
            )
            app.state.api = state
            state.reading_group = reading_group(state)
            async with httpx.AsyncClient() as http:
                state.http = http
                # Startup objects live as long as the process: keep them out of the
                # collector, whose full passes otherwise stall every WebSocket client.
                gc.freeze()
                try:
                    yield
                finally:
                    state.reading_group.close()
                    state.meter_budget.close()
        finally:
            if core is None:
                built.close()

    app = FastAPI(
        title="GridTokenX Tokenization Console API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Our own Prometheus metrics (api/metrics.py) cover requests; no OpenTelemetry.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    errors.install(app)
    install_openapi(app, (ReadingIn, BatchIn))
    # Built before startup: the middleware holds it.
    metrics = Metrics()
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    install_limits(app, settings)
    for router in (
        auth.router,
        ingest.router,
        bridge.router,
        readings.router,
        certificates.router,
        admin.router,
        gateways.router,
        telemetry.router,
        costs.router,
        exports.router,
        ops.router,
        *_optional_routers(),
    ):
        app.include_router(router)
    return app


def _first_admin(core: App) -> None:
    with core.sessions() as session:
        first = ensure_first_admin(session, core.settings.app)
    if first is None:
        return
    # The password itself is printed by `python -m api` only; never logged.
    where = f"; password saved in {first.password_file}" if first.password_file else ""
    log.warning("created the first admin %r%s", first.user.username, where)
