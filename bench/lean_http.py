"""A deliberately small HTTP/1.1 client for load generation (keep-alive, no TLS).

The benchmarks share two cores with the server they measure; a full-featured
client (httpx) spends about as much CPU per request as the server's own
framework. This one writes prepared request bytes and reads the status line,
headers and a Content-Length body: enough for JSON APIs that answer that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def request_bytes(method: str, host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive connection; requests on it are sequential."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw_request: bytes) -> Answer:
        self.writer.write(raw_request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return Answer(status, body)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def drive(
    host: str, port: int, work: list[list[bytes]], phase: Any, cpu: Any, ok: int
) -> None:
    """One keep-alive connection per list of `work`, each sending its requests in order.

    The run loop of every ingest phase: `phase` gathers latencies, statuses, the
    count answered `ok`, the elapsed time and `cpu`'s CPU per accepted request.
    """
    connections = await asyncio.gather(*(Connection.open(host, port) for _ in work))

    async def client(connection: Connection, requests: list[bytes]) -> None:
        for raw in requests:
            started = time.perf_counter()
            answer = await connection.send(raw)
            phase.latencies.append(time.perf_counter() - started)
            phase.statuses[answer.status] += 1
            phase.accepted += answer.status == ok

    try:
        cpu.begin()
        started = time.perf_counter()
        await asyncio.gather(*(client(c, r) for c, r in zip(connections, work, strict=True)))
        phase.elapsed = time.perf_counter() - started
        phase.cpu = cpu.per_reading_ms(phase.accepted)
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
