"""HTTP for the node: a bare ASGI app under uvicorn, plus the slot ticker, on one event loop.

Everything that touches the Node runs on the loop's thread, one request at a time,
which is what LiteSVM (not thread-safe) needs; no framework sits in between
because the node answers one route and every microsecond per call counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import uvicorn

from core.chain.localnet import pubsub_server
from core.chain.localnet.node import Node
from core.chain.localnet.pubsub_hub import Hub
from core.chain.localnet.rpc import Dispatcher

log = logging.getLogger(__name__)

# agave's MAX_REQUEST_BODY_SIZE: a larger body is refused before it is parsed.
MAX_REQUEST_BODY_SIZE = 50 * 1024

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RpcApp:
    """POST / takes JSON-RPC; GET /health answers "ok" as a validator does."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/health":
            await _respond(send, 200, b"ok", b"text/plain")
            return
        if scope["method"] != "POST":
            await _respond(
                send, 405, b"Used HTTP Method is not allowed. POST or OPTIONS is required"
            )
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, b"Payload too large")
            return
        answer = await self._dispatcher.handle(body)
        await _respond(send, 200, b"" if answer is None else answer.encode(), b"application/json")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BODY_SIZE:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    """uvicorn, minus its signal capture (it re-raises the signal after shutdown, so the
    process would die by SIGTERM instead of exiting 0 after closing the ledger)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


async def _tick_forever(node: Node) -> None:
    while True:
        node.tick()
        # Wake just after the slot boundary rather than polling.
        await asyncio.sleep(node.clock.seconds_to_next_slot() + 0.0005)


async def serve(
    node: Node,
    sock: socket.socket,
    methods: dict[str, Any],
    pubsub_sock: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; return after in-flight requests are answered."""
    config = uvicorn.Config(
        RpcApp(Dispatcher(node, methods)),
        lifespan="off",
        log_level="warning",
        access_log=False,
        http="httptools",
        # A WebSocket upgrade on the RPC port is a plain GET here (405), as on agave:
        # pubsub has its own port.
        ws="none",
        # Longer than clients keep idle connections (httpx: 5 s), so the client side
        # always closes first and never reuses a connection the server just dropped.
        timeout_keep_alive=65,
        timeout_graceful_shutdown=5,
    )
    port = sock.getsockname()[1]
    server = _Server(config, lambda: log.info("localnet listening on http://127.0.0.1:%d", port))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_exit, server, signum)
    hub = Hub(node, loop)
    pubsub = None if pubsub_sock is None else await pubsub_server.start(hub, pubsub_sock)
    if pubsub is not None:
        node.observer = hub
    ticker = asyncio.create_task(_tick_forever(node))
    try:
        await server.serve(sockets=[sock])
    finally:
        node.observer = None
        if pubsub is not None:
            await pubsub_server.stop(pubsub, hub)
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


def _request_exit(server: _Server, signum: int) -> None:
    log.info("localnet: %s received, shutting down", signal.Signals(signum).name)
    server.should_exit = True


def bind_pair(port: int, attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """RPC on `port` and pubsub on `port` + 1, as every Solana node lays them out.

    Port 0 picks a free pair (tests run several nodes side by side).
    """
    if port:
        rpc = bind(port)
        try:
            return rpc, bind(port + 1)
        except OSError:
            rpc.close()
            raise
    for _ in range(attempts):
        rpc = bind(0)
        chosen = rpc.getsockname()[1]
        if chosen < 65_535:
            with contextlib.suppress(OSError):
                return rpc, bind(chosen + 1)
        rpc.close()
    raise OSError(f"no free pair of adjacent ports after {attempts} tries")


def bind(port: int) -> socket.socket:
    """Listen on 127.0.0.1:port before the ledger loads, so a busy port fails fast."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock
