"""Being told that events were committed: PostgreSQL LISTEN, or polling on SQLite.

The scheduler's immediate mint trigger (and any other reader that wants to act
as soon as something happens) calls `EventWatcher.watch` with a callback that
receives the highest committed event id and the event types seen since the last
call. NOTIFY is only delivered at commit, so a rolled-back change never wakes anyone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine, func, select

from core.db.engine import read_only
from core.db.models import Event
from core.events import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
Callback = Callable[[int, set[str]], None]


class EventWatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        stop: threading.Event,
        poll_interval: float = 0.25,
        reconnect_delay: float = 1.0,
    ) -> None:
        self.engine = engine
        self.stop = stop
        self.poll_interval = poll_interval
        self.reconnect_delay = reconnect_delay
        self.last_id = self._max_id()

    def watch(self, callback: Callback) -> None:
        """Block until `stop` is set, calling `callback(max_id, types)` for new events."""
        if self.engine.dialect.name == "postgresql":
            self._listen(callback)
        else:
            self._poll(callback)

    def _max_id(self) -> int:
        with read_only(self.engine).connect() as connection:
            return int(connection.scalar(select(func.coalesce(func.max(Event.id), 0))))

    def _catch_up(self, callback: Callback) -> None:
        """Report events committed since `last_id` (after a reconnect, or on each poll)."""
        with read_only(self.engine).connect() as connection:
            newest = int(connection.scalar(select(func.coalesce(func.max(Event.id), 0))))
            if newest <= self.last_id:
                return
            types = set(
                connection.scalars(select(Event.type).where(Event.id > self.last_id).distinct())
            )
        self.last_id = newest
        callback(newest, types)

    def _poll(self, callback: Callback) -> None:
        while not self.stop.wait(self.poll_interval):
            try:
                self._catch_up(callback)
            except Exception:
                log.exception("polling the event log failed; trying again")

    def _listen(self, callback: Callback) -> None:
        url = self.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self.stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._catch_up(callback)  # whatever committed while we were not listening
                    while not self.stop.is_set():
                        for note in connection.notifies(timeout=0.5):
                            self._deliver(note.payload, callback)
            except Exception:
                log.warning("event notifications lost; reconnecting", exc_info=True)
                self.stop.wait(self.reconnect_delay)

    def _deliver(self, payload: str, callback: Callback) -> None:
        try:
            message = json.loads(payload)
            newest, types = int(message["max_id"]), set(message["types"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed notification: %r", payload[:200])
            return
        if newest > self.last_id:
            self.last_id = newest
        callback(newest, types)
