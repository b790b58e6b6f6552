"""/health, /metrics and the OpenAPI document."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.app import create_app
from core.bootstrap import App
from core.config import Settings
from tests.api.conftest import TestClient, error_of
from tests.factories import make_meter


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _HealthyNode(BaseHTTPRequestHandler):
    """The one JSON-RPC answer /health needs from a Solana node."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"jsonrpc": "2.0", "result": "ok", "id": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthyNode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _health(app: App, make_settings: Callable[..., Settings], rpc_url: str) -> tuple[int, dict]:
    app.settings = make_settings(
        DATABASE_URL=app.settings.app.effective_database_url, SOLANA_RPC_URL=rpc_url
    )
    with TestClient(create_app(app, create_first_admin=False)) as client:
        response = client.get("/health")
    return response.status_code, response.json()


def test_health_with_a_healthy_chain(
    app: App, make_settings: Callable[..., Settings], node_url: str
) -> None:
    assert _health(app, make_settings, node_url) == (
        200,
        {"status": "ok", "database": "ok", "chain": "ok", "mqtt": {"status": "not running"}},
    )


def test_health_is_degraded_not_failed_without_a_chain(
    app: App, make_settings: Callable[..., Settings]
) -> None:
    status, body = _health(app, make_settings, f"http://127.0.0.1:{_closed_port()}")
    assert status == 200
    assert (body["status"], body["database"]) == ("degraded", "ok")
    assert body["chain"].startswith("unavailable")


def test_metrics_count_readings_by_outcome(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    client.post("/api/meters/submit-reading", json=keys.payload(), headers=keys.headers)
    client.post("/api/meters/submit-reading", json=keys.payload(), headers=keys.headers)
    forged = {**keys.payload(), "kwh_amount": "9"}
    client.post("/api/meters/submit-reading", json=forged, headers=keys.headers)
    client.post("/api/meters/submit-reading", json=forged)
    text = client.get("/metrics").text
    assert "gridtokenx_readings_accepted_total 1.0" in text
    assert "gridtokenx_readings_duplicate_total 1.0" in text
    assert 'gridtokenx_readings_rejected_total{code="invalid_signature"} 1.0' in text
    assert 'gridtokenx_readings_rejected_total{code="unauthenticated"} 1.0' in text
    assert 'route="/api/meters/submit-reading",status="201"' in text


def test_metrics_are_for_loopback_clients_only(api: FastAPI) -> None:
    with TestClient(api, client=("203.0.113.9", 4000)) as remote:
        response = remote.get("/metrics")
    assert (response.status_code, error_of(response)["code"]) == (403, "forbidden")


def test_unknown_routes_answer_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")


def test_openapi_documents_every_route_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"ReadingIn", "BatchIn", "ReadingOut", "ErrorOut"} <= set(components)
    assert "HTTPValidationError" not in components
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/health":
                    examples = response["content"]["application/json"]["examples"]
                    for example in examples.values():
                        assert example["value"]["error"]["code"], (path, status)
    submit = schema["paths"]["/api/meters/submit-reading"]["post"]
    codes = {
        code
        for response in submit["responses"].values()
        for code in response.get("content", {}).get("application/json", {}).get("examples", {})
    }
    assert codes == {
        "unauthenticated",
        "invalid_signature",
        "meter_suspended",
        "forbidden",
        "unknown_meter",
        "duplicate_reading",
        "payload_too_large",
        "kwh_out_of_range",
        "too_many_decimals",
        "timestamp_in_future",
        "reading_too_old",
        "invalid_format",
        "rate_limited",
    }
    assert submit["requestBody"]["content"]["application/json"]["example"]["meter_signature"]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_interactive_docs_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
