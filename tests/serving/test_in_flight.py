"""The in-flight cap and the loopback guard, as ASGI middleware over a real ASGI app."""

from __future__ import annotations

import asyncio
import json

from pages.common.server import LoopbackOnly
from serving.body_limit import BodyLimit
from serving.in_flight import InFlightLimit


class Blocking:
    """An ASGI app whose requests wait until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await self.release.wait()
            return
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _call(app, scope: dict, messages: list[dict] | None = None) -> list[dict]:
    incoming = list(messages or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _http(path: str = "/x", client: str = "127.0.0.1", **extra) -> dict:
    return {"type": "http", "path": path, "client": (client, 1), "headers": [], **extra}


def test_past_the_cap_a_request_is_503_at_once_and_health_still_answers() -> None:
    async def scenario() -> None:
        inner = Blocking()
        app = InFlightLimit(inner, max_requests=2, max_websockets=1, exempt=("/health",),
                            busy=lambda: b'{"error": {"code": "server_busy"}}')  # fmt: skip
        first = asyncio.ensure_future(_call(app, _http()))
        second = asyncio.ensure_future(_call(app, _http()))
        while inner.entered < 2:
            await asyncio.sleep(0)
        refused = await _call(app, _http())
        assert refused[0]["status"] == 503
        assert (b"retry-after", b"1") in refused[0]["headers"]
        assert json.loads(refused[1]["body"])["error"]["code"] == "server_busy"
        health = asyncio.ensure_future(_call(app, _http("/health")))
        while inner.entered < 3:
            await asyncio.sleep(0)
        inner.release.set()
        assert [m[0]["status"] for m in await asyncio.gather(first, second, health)] == [200] * 3
        assert app.requests == 0

    asyncio.run(scenario())


def test_past_the_websocket_cap_a_socket_is_closed_with_1013() -> None:
    async def scenario() -> None:
        inner = Blocking()
        app = InFlightLimit(inner, max_requests=5, max_websockets=1, busy=lambda: b"")
        connect = [{"type": "websocket.connect"}]
        held = asyncio.ensure_future(_call(app, {"type": "websocket"}, connect))
        while app.websockets < 1:
            await asyncio.sleep(0)
        refused = await _call(app, {"type": "websocket"}, list(connect))
        assert refused == [{"type": "websocket.close", "code": 1013, "reason": "server busy"}]
        inner.release.set()
        await held

    asyncio.run(scenario())


def test_streamlit_metrics_are_for_loopback_only() -> None:
    async def scenario() -> None:
        inner = Blocking()
        inner.release.set()
        app = LoopbackOnly(inner, paths=("/_stcore/metrics",))
        outside = await _call(app, _http("/_stcore/metrics", client="203.0.113.9"))
        assert outside[0]["status"] == 403
        assert (await _call(app, _http("/_stcore/metrics")))[0]["status"] == 200
        assert (await _call(app, _http("/", client="203.0.113.9")))[0]["status"] == 200

    asyncio.run(scenario())


def test_a_body_is_cut_at_its_limit_while_it_is_read() -> None:
    async def scenario() -> None:
        read: list[bytes] = []

        async def reader(scope, receive, send) -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionError("client gone")  # what a framework raises
                read.append(message["body"])
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        app = BodyLimit(reader, default_limit=10, limits={"/big": 100},
                        too_large=lambda limit: f"over {limit}".encode())  # fmt: skip
        chunks = [{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 4
        chunks.append({"type": "http.request", "body": b"x" * 6, "more_body": False})
        sent = await _call(app, _http("/small"), list(chunks))
        assert sent[0]["status"] == 413 and sent[1]["body"] == b"over 10"
        assert (b"connection", b"close") in sent[0]["headers"]
        assert read == [b"x" * 6]  # the second chunk passed the limit: never delivered
        read.clear()
        assert (await _call(app, _http("/big"), list(chunks)))[0]["status"] == 200
        declared = _http("/small", headers=[(b"content-length", b"11")])
        read.clear()
        assert (await _call(app, declared, list(chunks)))[0]["status"] == 413
        assert read == []  # refused on the declared length, before reading

    asyncio.run(scenario())
