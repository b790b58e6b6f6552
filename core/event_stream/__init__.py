"""The live event feed: every committed event once, in id order, to each user allowed to see it.

`EventHub` (one per API process) reads the events table once and fans out to
`Subscription`s; `read_events` serves a reconnecting client's replay. No web
framework here: api/ws.py speaks WebSocket over it.
"""

from core.event_stream.feed import EventFeed, StreamEvent, Viewer, read_events
from core.event_stream.hub import EventHub, HubOptions, HubStats
from core.event_stream.ordering import OrderedWindow, Snapshot
from core.event_stream.subscription import EndReason, Subscription, TooManyConnections

__all__ = [
    "EndReason",
    "EventFeed",
    "EventHub",
    "HubOptions",
    "HubStats",
    "OrderedWindow",
    "Snapshot",
    "StreamEvent",
    "Subscription",
    "TooManyConnections",
    "Viewer",
    "read_events",
]
