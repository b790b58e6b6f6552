"""Request bodies the ingest routes parse themselves: size-capped, exact decimals.

FastAPI's own body parsing goes through float; a JSON number such as 2.01 must
reach core as Decimal("2.01"), with the literal as written kept (core.units.JsonNumber)
so "1e2" can be refused by the amount grammar. The size is checked against Content-Length and
again while streaming, so an oversized body is refused before it is all read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from core.readings import InvalidFormat, PayloadTooLarge, ReadingRejected
from core.units import JsonNumber

MAX_READING_BODY_BYTES = 16 * 1024
MAX_BATCH_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class JsonBody:
    """The parsed body, or why it could not be read (the route records the refusal)."""

    value: Any = None
    error: ReadingRejected | None = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=JsonNumber, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidFormat(f"the body is not valid JSON: {exc}") from exc


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
