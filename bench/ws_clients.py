"""The clients of bench/ws_latency.py and bench/fleet.py: cheap WebSocket receivers, in
their own processes.

Each client process connects its share of clients with the websockets Sans-I/O
protocol (frames are parsed as bytes arrive, no task or queue per message), so
500 clients on the same machine as the API take little CPU away from it.

A staff client may take the coalesced stream (`mode=summary`, api/ws.py): it records
(last event id of each summary, receipt time), warms up and ends on the counts of
bench_warmup and bench_end in the summaries' `by_type`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import uvloop
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri


@dataclass(frozen=True)
class Client:
    token: str
    user_id: int | None  # None: staff, entitled to every event
    summary: bool = False  # staff only: one coalesced message a second (mode=summary)


class Receiver(asyncio.Protocol):
    """One client: records (event id, receipt time) of the measured events."""

    def __init__(self, url: str, compression: str | None, needed: int) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if compression else None
        self.protocol = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.received: list[tuple[int, float]] = []
        self.warm, self.done = asyncio.Event(), asyncio.Event()
        self.needed = needed  # end markers still to come

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.protocol.receive_data(data)
        for frame in self.protocol.events_received():
            if isinstance(frame, Frame) and frame.opcode is Opcode.TEXT:
                if frame.data.startswith(b'{"type":"summary"'):
                    self._summary(json.loads(bytes(frame.data)), now)
                else:
                    self._message(bytes(frame.data[:64]), now)
        self._flush()  # pongs, the closing handshake

    def _summary(self, message: dict, now: float) -> None:
        counts = message["by_type"]
        if counts.get("bench_warmup"):
            self.warm.set()
        self.received.append((int(message["last_id"]), now))
        self.needed -= int(counts.get("bench_end", 0))
        if self.needed <= 0:
            self.done.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.warm.set()
        self.done.set()

    def _message(self, head: bytes, now: float) -> None:
        # Messages start {"id":N,"type":"...": read just that.
        if b'"type":"bench_warmup"' in head:
            self.warm.set()
        end = b'"type":"bench_end"' in head
        if end or b'"type":"meter_reading_received"' in head or b'"type":"bench_probe"' in head:
            self.received.append((int(head[6 : head.index(b",")]), now))
        self.needed -= end
        if not self.needed:
            self.done.set()

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data:
            self.transport.write(b"".join(data))


def run_clients(
    base: str,
    clients: list[Client],
    ready,
    out: str,
    ends: int,
    compression: str | None,
    timeout: float = 600,
) -> None:
    """One client process: connect, report ready, record (id, receipt time) until the end."""
    os.setpgrp()  # its own process group, for cpu_seconds
    # Receipt times pile up in lists; a full collection over them would stall every
    # client here for tens of ms and show up as server latency. Nothing here forms cycles.
    gc.disable()
    address = urlsplit(base)

    async def main() -> list[list[tuple[int, float]]]:
        loop = asyncio.get_running_loop()
        receivers = []
        for client in clients:
            # since=0: whatever was committed before this client subscribed is replayed.
            # A summary is live only (it takes no since): its warm-up must come after it.
            mode = "mode=summary" if client.summary else "since=0"
            url = f"{base}?token={client.token}&{mode}"
            needed = ends if client.user_id is None else 1
            _, receiver = await loop.create_connection(
                lambda url=url, needed=needed: Receiver(url, compression, needed),
                address.hostname,
                address.port,
            )
            receivers.append(receiver)
        await asyncio.gather(*(r.warm.wait() for r in receivers))
        ready.put(len(clients))
        # On a timeout, report what came: the caller counts what is missing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), timeout)
        for receiver in receivers:
            receiver.transport.close()
        return [r.received for r in receivers]

    Path(out).write_bytes(pickle.dumps(uvloop.run(main())))


def cpu_seconds(group: int) -> float:
    """User + system CPU time of the processes in a process group (Linux /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
