"""A cap on HTTP requests and WebSockets in progress in one server process.

Past the cap a request is answered 503 with Retry-After at once, instead of queueing
until memory or the database pool gives out; a WebSocket is accepted and closed with
1013 (try again later). Paths in `exempt` (the health check) are always served: a
supervisor must be able to tell "busy" from "dead". uvicorn's own
`limit_concurrency` counts open connections, idle ones included, so a flood of idle
connections would turn every request into a 503: this counts work only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class InFlightLimit:
    def __init__(
        self,
        app: Any,
        *,
        max_requests: int,
        max_websockets: int,
        busy: Callable[[], bytes],
        exempt: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_requests = max_requests
        self.max_websockets = max_websockets
        self.busy = busy
        self.exempt = frozenset(exempt)
        self.requests = 0
        self.websockets = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http" and scope.get("path") not in self.exempt:
            if self.requests >= self.max_requests:
                await self._busy(send)
                return
            self.requests += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.requests -= 1
        elif kind == "websocket":
            if self.websockets >= self.max_websockets:
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1013, "reason": "server busy"})
                return
            self.websockets += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.websockets -= 1
        else:
            await self.app(scope, receive, send)

    async def _busy(self, send: Any) -> None:
        body = self.busy()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
