"""Refuse a request body over its byte limit while it is read: 413, before any parsing.

Frameworks read a whole body before the route runs, authentication included, so
without this a 600 MB body with no token is read into memory to be answered 401.
Here a declared Content-Length over the limit is refused before a byte of body is
read, and a body without one (chunked) is refused as soon as the limit is passed:
the middleware answers 413 itself, tells the application the client left, and
drops whatever the application tries to send afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyLimit:
    def __init__(
        self,
        app: Any,
        *,
        default_limit: int,
        limits: Mapping[str, int] | None = None,
        too_large: Callable[[int], bytes],
    ) -> None:
        """`limits` maps exact paths to their own limit; `too_large(limit)` is the
        JSON body of the 413."""
        self.app = app
        self.default_limit = default_limit
        self.limits = dict(limits or {})
        self.too_large = too_large

    def limit_for(self, path: str) -> int:
        return self.limits.get(path, self.default_limit)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(send, limit)
            return
        state = {"received": 0, "refused": False, "started": False}

        async def limited_receive() -> Message:
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["refused"] = True
                    if not state["started"]:
                        await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the 413 went out; the application's answer is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise  # a refused body ends as "client gone" inside the app: not an error

    async def _refuse(self, send: Any, limit: int) -> None:
        body = self.too_large(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is never read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else None
    return None
