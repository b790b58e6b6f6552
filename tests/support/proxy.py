"""A real TCP proxy for fault injection between a process and a server.

It forwards bytes both ways and can, on command: add latency to every chunk,
cut every open connection, and refuse new connections for a while. Tests put it
between the scheduler and the Solana node or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Literal

Fault = Literal["slow", "cut", "refuse"]


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.delay = 0.0
        self.refusing = False
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faulty-proxy", daemon=True)
        self.connections = 0

    # --- control (thread-safe) ---------------------------------------------------------

    def start(self) -> FaultyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def cut_all(self) -> None:
        """Close every open connection (both directions) mid-stream."""
        self._call(self._cut_all)

    @contextlib.contextmanager
    def refused(self) -> Iterator[None]:
        """New connections are closed at once while inside the block; open ones are cut."""
        self.refusing = True
        self.cut_all()
        try:
            yield
        finally:
            self.refusing = False

    def _call(self, function) -> None:
        done = threading.Event()

        def run() -> None:
            function()
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    # --- the event loop ----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, sock=listener))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._cut_all()

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for side in (writer, up_writer):
            self._writers.discard(side)
            with contextlib.suppress(Exception):
                side.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            if self.delay:
                await asyncio.sleep(self.delay)  # injected latency, the fault under test
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()


def inject(
    fault: Fault,
    rng: random.Random,
    *proxies: FaultyProxy,
    delay: float,
    span: tuple[float, float],
) -> None:
    """One fault on every proxy given: `slow` (each chunk `delay` s late) and `refuse`
    (nothing reachable) last a random time within `span`; `cut` drops every open
    connection mid-request at once. The sleeps are how long the fault lasts, not a wait."""
    if fault == "cut":
        for proxy in proxies:
            proxy.cut_all()
        return
    with contextlib.ExitStack() as stack:
        for proxy in proxies:
            if fault == "slow":
                proxy.delay = delay
                stack.callback(setattr, proxy, "delay", 0.0)
            else:
                stack.enter_context(proxy.refused())
        time.sleep(rng.uniform(*span))
