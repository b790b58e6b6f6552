"""One connected client's bounded queue between the hub's fan-out and its sender.

The hub offers events without awaiting anything; a client that falls `limit`
events behind is ended (OVERFLOW) instead of slowing the hub or other clients.
Lives on the event loop thread only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum

from core.errors import DomainError
from core.event_stream.feed import StreamEvent, Viewer


class EndReason(StrEnum):
    """Why the hub ended a subscription; the API turns each into a close code."""

    OVERFLOW = "overflow"
    ACCOUNT_DISABLED = "account_disabled"
    SESSION_ENDED = "session_ended"
    SHUTDOWN = "shutdown"


class TooManyConnections(DomainError):
    code = "too_many_connections"


class Subscription:
    """Events after `position` that `viewer` may see, in id order, until `ended` resolves."""

    def __init__(self, viewer: Viewer, position: int, limit: int) -> None:
        self.viewer = viewer
        self.position = position
        self.limit = limit
        self._loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[EndReason] = self._loop.create_future()
        self._queue: deque[StreamEvent] = deque()
        # A bare future rather than an asyncio.Event: this runs once per event per client.
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: StreamEvent) -> bool:
        """Queue `event`; False when this client is too far behind and was ended instead."""
        if self.ended.done():
            return True
        if len(self._queue) >= self.limit:
            self._queue.clear()  # nobody will send them now
            self.end(EndReason.OVERFLOW)
            return False
        self._queue.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def end(self, reason: EndReason) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def next_batch(self) -> list[StreamEvent]:
        """Everything queued so far (waits while nothing is)."""
        if not self._queue:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        batch = list(self._queue)
        self._queue.clear()
        return batch
