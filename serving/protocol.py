"""uvicorn's HTTP protocol with the deadlines a server facing the network needs.

uvicorn closes an idle keep-alive connection `timeout_keep_alive` seconds after a
response, and never otherwise: a connection that sends nothing, or one header line
every few seconds, stays open for ever. A few thousand such connections exhaust the
open-file limit and every new connection (a health check too) is reset. Here:

- request headers must be complete within `header_timeout_secs` of the connection
  opening or of the previous response ending (trickling data does not extend it);
- headers larger than `max_header_bytes` are answered 431 and the connection closed;
- above `max_connections` open connections, the oldest one still waiting for its
  headers is closed to make room; when every connection is busy, the newcomer is.

`serve(app, limits, ...)` runs uvicorn with them (`uvicorn_config` builds the Config).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import resource
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

# Open files kept for everything but client connections: the database pool, logs,
# SQLite's WAL and SHM, the event watcher, outgoing HTTP.
_RESERVED_FILES = 256


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_secs: float = 10.0
    keep_alive_secs: int = 5
    max_header_bytes: int = 64 * 1024
    max_connections: int = 0  # 0: derived from the process's open-file limit

    def effective_max_connections(self) -> int:
        if self.max_connections > 0:
            return self.max_connections
        return default_max_connections()


def connection_limits(settings: Any) -> ConnectionLimits:
    """From the HTTP_* settings (core.config.AppSettings)."""
    return ConnectionLimits(
        header_timeout_secs=settings.http_header_timeout_secs,
        keep_alive_secs=settings.http_keep_alive_secs,
        max_connections=settings.http_max_connections,
    )


def default_max_connections() -> int:
    """Below the open-file limit, so accepting never fails with EMFILE."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    reserve = max(_RESERVED_FILES, soft // 10)
    return max(16, soft - reserve)


_STATUS_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Reads its ConnectionLimits from `config.connection_limits` (see `serve`): a
    module-level class, so uvicorn's worker processes can unpickle the config."""

    _header_timer: asyncio.TimerHandle | None = None
    _awaiting_headers = True
    _header_bytes = 0
    _waiting_since = 0.0

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > _max_connections(self._limits):
            self._shed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_headers or self.transport.is_closing():
            return
        # Counted after parsing: one read may hold the headers and body bytes.
        self._header_bytes += len(data)
        if self._header_bytes > self._limits.max_header_bytes:
            self._refuse(_STATUS_431, b"request headers too large")

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_headers()

    def _await_headers(self) -> None:
        self._awaiting_headers, self._header_bytes = True, 0
        self._waiting_since = self.loop.time()
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(
            self._limits.header_timeout_secs, self._header_deadline
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def _shed(self) -> None:
        waiting = [
            connection
            for connection in self.connections
            if isinstance(connection, BoundedHttpToolsProtocol)
            and connection is not self
            and connection._awaiting_headers
            and not connection.transport.is_closing()
        ]
        if waiting:
            min(waiting, key=lambda c: c._waiting_since).transport.close()
        else:
            self.transport.close()  # every connection is working: the newcomer waits its turn

    def _refuse(self, status_line: bytes, message: bytes) -> None:
        self.transport.write(
            status_line
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: "
            + str(len(message)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + message
        )
        self.transport.close()


@functools.cache
def _max_connections(limits: ConnectionLimits) -> int:
    return limits.effective_max_connections()


def uvicorn_config(app: Any, limits: ConnectionLimits, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn Config with the bounded protocol and the keep-alive timeout.

    Proxy headers are off: the client's address is taken from X-Forwarded-For by the
    application, and only from trusted proxies (serving.client_address).
    """
    config = uvicorn.Config(
        app,
        http=BoundedHttpToolsProtocol,
        timeout_keep_alive=limits.keep_alive_secs,
        proxy_headers=False,
        server_header=False,
        **kwargs,
    )
    config.connection_limits = limits  # type: ignore[attr-defined]
    return config


def serve(app: Any, limits: ConnectionLimits, **kwargs: Any) -> bool:
    """uvicorn.run with `limits`; several workers when kwargs ask (app as import string).

    Returns whether the server started.
    """
    config = uvicorn_config(app, limits, **kwargs)
    server = uvicorn.Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return True
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return server.started
