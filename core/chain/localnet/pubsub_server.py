"""WebSocket pubsub on LOCALNET_PORT + 1, as agave's rpc_pubsub_service serves it.

JSON-RPC 2.0 text frames in (at most 4 KiB each, as agave), responses and
notifications out. Each connection has its own bounded queue and one writer
task: the node only appends to the queue, and a client too slow to keep up
with its queue is disconnected (agave drops a lagging client the same way)
rather than slowing the node or anyone else. Shutdown closes every connection
with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from core.chain.localnet import params
from core.chain.localnet.errors import INVALID_REQUEST, PARSE_ERROR, RpcError, method_not_found
from core.chain.localnet.methods.cluster import FEATURE_SET, SOLANA_CORE_VERSION
from core.chain.localnet.pubsub_hub import Hub
from core.chain.localnet.pubsub_params import SUBSCRIBE, UNSUBSCRIBE
from core.chain.localnet.rpc import failure, success

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096  # agave's set_max_message_size
MAX_QUEUED_MESSAGES = 10_000
MAX_QUEUED_BYTES = 16 * 1024 * 1024
POLICY_VIOLATION = 1008


class Connection:
    """One client: its subscriptions live in the hub, its outgoing text in a bounded queue."""

    def __init__(self, ws: ServerConnection, hub: Hub) -> None:
        self._ws = ws
        self._hub = hub
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self.dropped = False
        self._closing: asyncio.Future[None] | None = None

    def push(self, text: str) -> None:
        if self.dropped:
            return
        if len(self._queue) >= MAX_QUEUED_MESSAGES or self._queued_bytes > MAX_QUEUED_BYTES:
            self.dropped = True
            self._hub.drop(self)
            log.warning("localnet pubsub: dropping a client %d messages behind", len(self._queue))
            self._queue.clear()
            self._closing = asyncio.ensure_future(
                self._ws.close(POLICY_VIOLATION, "notification queue full")
            )
            return
        self._queue.append(text)
        self._queued_bytes += len(text)
        self._wake.set()

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    try:
                        message = message.decode()
                    except UnicodeDecodeError:
                        break  # agave closes on data that is not UTF-8
                answer = self._answer(message)
                if answer is not None:
                    self.push(answer)
        except ConnectionClosed:
            pass
        finally:
            self._hub.drop(self)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    text = self._queue.popleft()
                    self._queued_bytes -= len(text)
                    await self._ws.send(text)

    def _answer(self, text: str) -> str | None:
        try:
            request = json.loads(text)
        except ValueError:
            return failure(None, RpcError(PARSE_ERROR, "Parse error"))
        if isinstance(request, list):
            if not request:
                return failure(None, RpcError(INVALID_REQUEST, "Invalid request"))
            answers = [a for call in request if (a := self._call(call)) is not None]
            return f"[{','.join(answers)}]" if answers else None
        return self._call(request)

    def _call(self, call: Any) -> str | None:
        if (
            not isinstance(call, dict)
            or call.get("jsonrpc") != "2.0"
            or not isinstance(call.get("method"), str)
        ):
            request_id = call.get("id") if isinstance(call, dict) else None
            return failure(request_id, RpcError(INVALID_REQUEST, "Invalid request"))
        method, request_id = call["method"], call.get("id")
        try:
            if method in SUBSCRIBE:
                result = str(self._hub.subscribe(self, method, call.get("params")))
            elif method in UNSUBSCRIBE:
                (sub_id,) = params.positional(call.get("params"), 1)
                result = json.dumps(self._hub.unsubscribe(self, sub_id))
            elif method == "getVersion":
                result = json.dumps(
                    {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}
                )
            else:
                raise method_not_found()
        except RpcError as error:
            return None if "id" not in call else failure(request_id, error)
        # A notification-style call (no id), such as @solana/kit's keep-alive ping, gets no answer.
        return None if "id" not in call else success(request_id, result)


async def start(hub: Hub, sock: Any) -> Server:
    """Serve pubsub on an already bound socket; returns the server to close at shutdown."""

    async def handler(ws: ServerConnection) -> None:
        await Connection(ws, hub).serve()

    logging.getLogger("websockets.server").setLevel(logging.WARNING)  # no line per connection
    server = await serve(
        handler,
        sock=sock,
        compression=None,  # agave negotiates no per-message deflate either
        max_size=MAX_MESSAGE_BYTES,
        max_queue=64,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
    )
    log.info("localnet pubsub listening on ws://127.0.0.1:%d", sock.getsockname()[1])
    return server


async def stop(server: Server, hub: Hub) -> None:
    """Close every connection with 1001 (going away), then the listener."""
    server.close(close_connections=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=5)
    hub.close()
