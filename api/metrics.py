"""Prometheus metrics: readings accepted and rejected by code, request latency, and the
MQTT bridge's counters read from its heartbeat row.

Each app has its own registry (tests build many apps in one process). With
several uvicorn workers every worker counts its own requests; /metrics answers
for the worker that serves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.ingest_health import BridgeHealth

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


class _BridgeCollector(Collector):
    """The MQTT bridges' counters as their heartbeats last reported them (core.ingest_health):
    the bridge is its own process, so its counts reach /metrics through the database."""

    def __init__(self, bridges: list[BridgeHealth]) -> None:
        self.bridges = bridges

    def collect(self) -> Iterator[Metric]:
        readings = CounterMetricFamily(
            "gridtokenx_mqtt_readings",
            "MQTT readings by outcome (accepted, duplicate, rejected) and rejection code",
            labels=["bridge", "outcome", "code"],
        )
        messages = CounterMetricFamily(
            "gridtokenx_mqtt_messages", "MQTT messages the bridge handled", labels=["bridge"]
        )
        connected = GaugeMetricFamily(
            "gridtokenx_mqtt_connected",
            "1 when the bridge's fresh heartbeat says it is connected to its broker",
            labels=["bridge"],
        )
        rate = GaugeMetricFamily(
            "gridtokenx_mqtt_messages_per_second",
            "MQTT messages per second over the bridge's last heartbeat interval",
            labels=["bridge"],
        )
        for bridge in self.bridges:
            for key, count in sorted(bridge.counters.items()):
                if key == "messages":
                    messages.add_metric([bridge.name], count)
                    continue
                outcome, _, code = key.partition(":")
                readings.add_metric([bridge.name, outcome, code], count)
            connected.add_metric([bridge.name], 1 if bridge.status == "connected" else 0)
            rate.add_metric([bridge.name], float(bridge.messages_per_sec))
        yield from (readings, messages, connected, rate)


def bridge_metrics(bridges: list[BridgeHealth]) -> bytes:
    if not bridges:
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_BridgeCollector(bridges))
    return generate_latest(registry)
