"""EventWatcher: told about committed events only, on both databases."""

from __future__ import annotations

import threading

from core.event_watch import EventWatcher
from core.events import publish


def test_committed_events_are_reported_and_rolled_back_ones_are_not(engine, sessions) -> None:
    stop = threading.Event()
    seen: list[tuple[int, set[str]]] = []
    arrived = threading.Event()

    def on_events(max_id: int, types: set[str]) -> None:
        seen.append((max_id, types))
        arrived.set()

    watcher = EventWatcher(engine, stop=stop, poll_interval=0.05)
    thread = threading.Thread(target=watcher.watch, args=(on_events,), daemon=True)
    thread.start()
    try:
        with sessions() as session:
            publish(session, "meter_reading_received", {"reading_id": 1})
            session.rollback()
            event = publish(session, "mint_requested", {"by": "root"})
            session.commit()
        assert arrived.wait(10), "the committed event was never reported"
        assert seen[-1][0] == event.id
        assert all(types == {"mint_requested"} for _, types in seen)
    finally:
        stop.set()
        thread.join(5)
