"""Operations: /health for supervisors and load balancers, /metrics for Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.deps import StateDep
from api.metrics import bridge_metrics
from api.openapi import error_responses
from api.schemas import HealthOut
from api.state import ApiState
from core.db.types import utcnow
from core.errors import Forbidden
from core.ingest_health import BridgeHealth, bridge_health

router = APIRouter(tags=["operations"])

CHAIN_TIMEOUT_SECS = 1.5
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _database_status(state: ApiState) -> tuple[str, dict[str, Any] | None]:
    """The database's status and, read in the same transaction, the MQTT bridge's."""
    try:
        with state.read_session() as session:
            session.execute(text("SELECT 1"))
            return "ok", _mqtt_status(bridge_health(session, utcnow()))
    except Exception as exc:  # any failure is "unavailable", reported, never raised
        return f"unavailable: {type(exc).__name__}", None


def _mqtt_status(bridges: list[BridgeHealth]) -> dict[str, Any]:
    if not bridges:
        return {"status": "not running"}
    bridge = bridges[0]  # the freshest heartbeat
    # Several bridges on one shared subscription (MQTT_BRIDGES): the rate is all of theirs.
    rate = sum((b.messages_per_sec for b in bridges if b.alive), bridge.messages_per_sec * 0)
    return {
        "status": bridge.status,
        "broker": bridge.broker,
        "messages_per_sec": format(rate if bridge.alive else bridge.messages_per_sec, "f"),
        "last_message_at": bridge.last_message_at.isoformat() if bridge.last_message_at else None,
        "heartbeat_at": bridge.heartbeat_at.isoformat(),
    }


async def _chain_status(state: ApiState) -> str:
    if state.http is None:
        return "unavailable: no HTTP client"
    url = state.core.settings.app.effective_rpc_url
    try:
        answer = await state.http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
            timeout=CHAIN_TIMEOUT_SECS,
        )
        payload = answer.json()
    except Exception as exc:  # unreachable, timeout, not JSON: the chain is unavailable
        return f"unavailable: {type(exc).__name__}"
    if payload.get("result") == "ok":
        return "ok"
    message = (payload.get("error") or {}).get("message", "no result")
    return f"unhealthy: {message}"


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Database and chain health",
    description=(
        "200 with status ok, or degraded when only the chain is unavailable (readings are "
        "still accepted); 503 with status unavailable when the database is unreachable."
    ),
    responses={503: {"model": HealthOut, "description": "The database is unavailable"}},
)
async def health(state: StateDep) -> JSONResponse:
    database, mqtt = await run_in_threadpool(_database_status, state)
    chain = await _chain_status(state)
    if database != "ok":
        return JSONResponse({"status": "unavailable", "database": database, "chain": chain}, 503)
    status = "ok" if chain == "ok" else "degraded"
    return JSONResponse({"status": status, "database": database, "chain": chain, "mqtt": mqtt})


@router.get(
    "/metrics",
    summary="Prometheus metrics (loopback clients only)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **error_responses("forbidden"),
    },
)
def metrics(request: Request, state: StateDep) -> Response:
    # Behind a trusted proxy the peer is the proxy: judge the client it names.
    host = state.client_of(request)
    if host not in _LOOPBACK and not host.startswith("127."):
        raise Forbidden("metrics are served to loopback clients only")
    try:
        with state.read_session() as session:
            bridges = bridge_health(session, utcnow())
    except Exception:  # the database is down: the API's own counters are still served
        bridges = []
    return Response(
        state.metrics.render() + bridge_metrics(bridges), media_type=CONTENT_TYPE_LATEST
    )
