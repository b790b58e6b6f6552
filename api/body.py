"""Request bodies the ingest routes parse themselves: size-capped, exact decimals.

FastAPI's own body parsing goes through float; core.readings.json_text parses as
every ingest door does (exact decimals). The size is checked against Content-Length and
again while streaming, so an oversized body is refused before it is all read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from core.readings import InvalidFormat, PayloadTooLarge, ReadingRejected
from core.readings.json_text import parse_json

MAX_READING_BODY_BYTES = 16 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class JsonBody:
    """The parsed body, or why it could not be read (the route records the refusal)."""

    value: Any = None
    error: ReadingRejected | None = None


def json_body(limit: int) -> Callable[[Request], Awaitable[JsonBody]]:
    async def read(request: Request) -> JsonBody:
        too_large = PayloadTooLarge(f"the body exceeds {limit} bytes")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return JsonBody(error=too_large)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return JsonBody(error=too_large)
            chunks.append(chunk)
        try:
            return JsonBody(value=parse_json(b"".join(chunks)))
        except InvalidFormat as error:
            return JsonBody(error=error)

    return read
