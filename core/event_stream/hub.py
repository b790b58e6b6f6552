"""One dispatcher per process: reads each committed event once and fans it out.

A reader thread runs the EventFeed (blocking database reads), woken by
PostgreSQL NOTIFY through EventWatcher or by a short poll on SQLite, and hands
ordered batches to the event loop. There `_fan_out` offers each event to the
subscriptions allowed to see it; offering never awaits, so one slow client
cannot delay the others. `subscribe` and `_fan_out` both run on the loop, so a
new subscription's `position` is exactly where its live events begin.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from core.event_stream.feed import EventFeed, StreamEvent, Viewer
from core.event_stream.subscription import EndReason, Subscription, TooManyConnections
from core.event_watch import EventWatcher
from core.events import EventType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubOptions:
    queue_limit: int = 1024  # events a client may fall behind before it is closed
    max_per_user: int = 5  # open subscriptions per user in this process
    poll_interval: float = 0.1  # SQLite: how often to look for new events
    safety_interval: float = 1.0  # PostgreSQL: a read even without a notification
    hole_interval: float = 0.02  # how soon to look again while a hole may fill
    max_hole_wait: float = 30.0  # then a hole is given up (see OrderedWindow)
    retry_interval: float = 1.0  # after a failed read
    idle_interval: float = 1.0  # with no subscriber: keep up lazily, not on every commit


@dataclass(frozen=True)
class HubStats:
    position: int
    subscriptions: int
    offered: int
    overflows: int
    abandoned_holes: int


class EventHub:
    def __init__(self, engine: Engine, options: HubOptions | None = None) -> None:
        self.options = options or HubOptions()
        self.feed = EventFeed(engine, max_hole_wait=self.options.max_hole_wait)
        self.position = 0
        self._staff: set[Subscription] = set()
        self._prosumers: defaultdict[int, set[Subscription]] = defaultdict(set)
        self._per_user: Counter[int] = Counter()
        self._offered = 0
        self._overflows = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._attention = threading.Event()  # a first subscriber arrived, or stop
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._batches: asyncio.Queue[tuple[list[StreamEvent], int]] = asyncio.Queue()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.position = await asyncio.to_thread(self.feed.start)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="event-dispatch")
        self._spawn(self._read_forever, "event-feed")
        if self.feed.postgres:
            watcher = EventWatcher(self.feed.engine, stop=self._stop)
            self._spawn(watcher.watch, "event-listen", lambda _max_id, _types: self._wake.set())

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._attention.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 10)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        self.feed.close()
        for subscription in self._all():
            subscription.end(EndReason.SHUTDOWN)

    def subscribe(self, viewer: Viewer) -> Subscription:
        """A subscription to every event after the current position that `viewer` may see."""
        if self._per_user[viewer.user_id] >= self.options.max_per_user:
            raise TooManyConnections(
                f"at most {self.options.max_per_user} connections per user; close one first"
            )
        subscription = Subscription(viewer, self.position, self.options.queue_limit)
        self._per_user[viewer.user_id] += 1
        self._attention.set()
        if viewer.is_staff:
            self._staff.add(subscription)
        else:
            self._prosumers[viewer.user_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        viewer = subscription.viewer
        group = self._staff if viewer.is_staff else self._prosumers.get(viewer.user_id, set())
        if subscription not in group:
            return
        group.discard(subscription)
        if not group and not viewer.is_staff:
            del self._prosumers[viewer.user_id]
        self._per_user[viewer.user_id] -= 1
        if self._per_user[viewer.user_id] <= 0:
            del self._per_user[viewer.user_id]

    def stats(self) -> HubStats:
        return HubStats(
            position=self.position,
            subscriptions=sum(self._per_user.values()),
            offered=self._offered,
            overflows=self._overflows,
            abandoned_holes=self.feed.window.abandoned,
        )

    async def _dispatch(self) -> None:
        # Parts of half a queue, with a yield between them: every sender that can
        # write drains its queue before the next part, so a burst (a batch of 1000
        # readings) overflows only clients that are really stuck.
        part_size = max(1, self.options.queue_limit // 2)
        while True:
            events, position = await self._batches.get()
            for start in range(0, len(events), part_size):
                part = events[start : start + part_size]
                self._fan_out(part)
                self.position = part[-1].id
                await asyncio.sleep(0)
            self.position = position

    def _fan_out(self, events: list[StreamEvent]) -> None:
        for event in events:
            targets = [*self._staff, *self._prosumers.get(event.user_id or -1, ())]
            for subscription in targets:
                if not subscription.offer(event):
                    self._overflows += 1
            self._offered += len(targets)
            if event.type == EventType.USER_CHANGED:
                self._user_changed(event.payload)

    def _user_changed(self, payload: dict[str, object]) -> None:
        change = payload.get("change")
        if change == "disabled":
            self._end_user(str(payload.get("username")), EndReason.ACCOUNT_DISABLED)
        elif change == "sessions_ended":  # logout, password change, an admin (core.sessions)
            ended = payload.get("sessions")
            self._end_sessions(set(ended) if isinstance(ended, list) else set())

    def _end_user(self, username: str, reason: EndReason) -> None:
        for subscription in self._all():
            if subscription.viewer.username == username:
                subscription.end(reason)

    def _end_sessions(self, session_ids: set[object]) -> None:
        for subscription in self._all():
            if subscription.viewer.session_id in session_ids:
                subscription.end(EndReason.SESSION_ENDED)

    def _all(self) -> list[Subscription]:
        return [*self._staff, *(s for group in self._prosumers.values() for s in group)]

    def _spawn(self, target: Callable[..., object], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_forever(self) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            if self._idle():
                # Nobody listens: reading on every commit would cost ingest a query per
                # reading. Keep the position roughly current; a subscriber wakes us at
                # once, and whatever it missed meanwhile it gets live (ids > position).
                self._attention.wait(self.options.idle_interval)
            elif not self.feed.full:
                self._wake.wait(self._interval())
            self._attention.clear()
            self._wake.clear()  # before reading: a commit during the read wakes us again
            if self._stop.is_set():
                return
            try:
                events = self.feed.poll()
            except Exception:
                log.exception("reading the event log failed; trying again")
                self._stop.wait(self.options.retry_interval)
                continue
            if events or self.feed.position != self.position:
                batch = (events, self.feed.position)
                self._loop.call_soon_threadsafe(self._batches.put_nowait, batch)

    def _idle(self) -> bool:
        return not self._per_user and not self.feed.waiting and not self.feed.full

    def _interval(self) -> float:
        if self.feed.waiting:
            return self.options.hole_interval
        return self.options.safety_interval if self.feed.postgres else self.options.poll_interval
