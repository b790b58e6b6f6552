"""Prometheus metrics: readings accepted and rejected by code, request latency.

Each app has its own registry (tests build many apps in one process). With
several uvicorn workers every worker counts its own requests; /metrics answers
for the worker that serves it.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accepted = Counter(
            "gridtokenx_readings_accepted_total",
            "Readings stored (new)",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "gridtokenx_readings_duplicate_total",
            "Readings answered with an already stored reading (a meter's resend)",
            registry=self.registry,
        )
        self.rejected = Counter(
            "gridtokenx_readings_rejected_total",
            "Readings or meter requests refused, by error code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gridtokenx_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def reject(self, code: str, count: int = 1) -> None:
        if count:
            self.rejected.labels(code=code).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Times every HTTP request; labels by the matched route template, not the raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )
