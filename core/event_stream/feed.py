"""Reading committed events from the table: the live feed's reads and a client's replay.

Both encode each event's CONTRACT message at most once, when first sent, so fanning
it out to many clients costs no JSON work per client, and to none costs none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, or_, select, text
from sqlalchemy.orm import Session

from core.db.engine import is_postgres, read_only
from core.db.models import Event, Role
from core.event_stream.ordering import OrderedWindow, Snapshot
from core.events import to_message

MAX_LISTED_HOLES = 2000
STAFF_ROLES = frozenset({Role.ADMIN.value, Role.OPERATOR.value})


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One committed event: who may see it, and its message encoded once when first sent.

    Encoded on demand: the hub reads every event, and with nobody to send it to
    (no subscriber, or none allowed to see it) the JSON work would be for nothing;
    at fleet rate it was most of the hub's CPU.
    """

    id: int
    type: str
    user_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    _encoded: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def text(self) -> str:
        if not self._encoded:
            message = json.dumps(to_message(self), separators=(",", ":"), ensure_ascii=False)
            self._encoded.append(message)
        return self._encoded[0]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is watching: staff see every event, a prosumer only events with their user_id."""

    user_id: int
    username: str
    role: str
    # The login session (core.sessions) behind the connection: ending it ends the stream.
    session_id: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def may_see(self, event: StreamEvent) -> bool:
        return self.is_staff or event.user_id == self.user_id


# Columns, not ORM rows: the hub reads every event, and an ORM instance per row cost more
# than the row.
_COLUMNS = (Event.id, Event.type, Event.user_id, Event.payload, Event.created_at)


def encode(row: Any) -> StreamEvent:
    return StreamEvent(row.id, row.type, row.user_id, row.payload, row.created_at)


def read_events(
    engine: Engine, viewer: Viewer, *, after: int, upto: int, limit: int = 500
) -> list[StreamEvent]:
    """The events `viewer` may see with after < id <= upto, oldest first (a replay page)."""
    query = select(*_COLUMNS).where(Event.id > after, Event.id <= upto)
    if not viewer.is_staff:
        query = query.where(Event.user_id == viewer.user_id)
    with Session(read_only(engine)) as session:
        return [encode(row) for row in session.execute(query.order_by(Event.id).limit(limit))]


def latest_event_id(engine: Engine) -> int:
    with read_only(engine).connect() as connection:
        return int(connection.scalar(select(func.coalesce(func.max(Event.id), 0))))


def _elsewhere(session: Session) -> frozenset[int]:
    """Running xids (32-bit) of sessions in other databases, read after the snapshot.

    Sessions hidden from us (other roles, without pg_read_all_stats) are not
    listed, which only makes the feed wait longer.
    """
    return frozenset(
        int(xid)
        for xid in session.scalars(
            text(
                "SELECT backend_xid::text::bigint FROM pg_stat_activity"
                " WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()"
            )
        )
    )


class EventFeed:
    """Every committed event exactly once, in id order; blocking reads for one thread.

    On PostgreSQL each read takes the rows and `pg_current_snapshot()` in one
    REPEATABLE READ transaction (plus a fresh xid when a new hole appears), so
    the window can tell holes that may still fill from permanent ones. It starts
    `lookback` ids back, so a transaction still open at start is waited for.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lookback: int = 1000,
        batch_size: int = 1000,
        max_hole_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.postgres = is_postgres(engine)
        self.lookback = lookback
        self.batch_size = batch_size
        self.max_hole_wait = max_hole_wait
        self.clock = clock
        self.window: OrderedWindow[StreamEvent] = OrderedWindow(0)
        self.full = False  # the last read hit batch_size: read again at once
        self._connection: Connection | None = None

    @property
    def position(self) -> int:
        return self.window.position

    @property
    def waiting(self) -> bool:
        return self.window.waiting

    def start(self) -> int:
        """Position the feed at the newest settled event; returns that id."""
        newest = latest_event_id(self.engine)
        start = max(0, newest - self.lookback) if self.postgres else newest
        self.window = OrderedWindow(start, max_hole_wait=self.max_hole_wait, clock=self.clock)
        while True:  # events before the start are history: replay serves them, not the feed
            self.poll()
            if not self.full:
                return self.position

    def poll(self) -> list[StreamEvent]:
        """Newly releasable events, in id order (possibly none)."""
        query = select(*_COLUMNS).order_by(Event.id).limit(self.batch_size)
        holes = self.window.holes()
        after = Event.id > self.window.seen_upto
        if len(holes) > MAX_LISTED_HOLES:  # e.g. a rolled-back batch: re-read from position
            query = query.where(Event.id > self.window.position)
        else:
            query = query.where(or_(after, Event.id.in_(holes)) if holes else after)
        if self.postgres:
            snapshot, rows, bound = self._read_postgres(query)
        else:
            snapshot, rows, bound = None, self._read_sqlite(query), None
        self.full = len(rows) >= self.batch_size
        checked_upto = rows[-1][0] if self.full else None
        return self.window.accept(rows, snapshot, bound, checked_upto)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _read_sqlite(self, query: Select[Any]) -> list[tuple[int, StreamEvent]]:
        with Session(read_only(self.engine)) as session:
            return [(row.id, encode(row)) for row in session.execute(query)]

    def _read_postgres(
        self, query: Select[Any]
    ) -> tuple[Snapshot, list[tuple[int, StreamEvent]], int | None]:
        # One held connection: the feed reads often, and its isolation level stays put.
        if self._connection is None:
            connection = self.engine.connect()
            self._connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            with Session(self._connection) as session:
                try:
                    # The first statement fixes the transaction's snapshot for both reads.
                    snapshot = Snapshot.parse(
                        str(session.scalar(text("SELECT pg_current_snapshot()::text")))
                    )
                    rows = [(row.id, encode(row)) for row in session.execute(query)]
                    if self.window.waiting and snapshot.in_progress:
                        snapshot = replace(snapshot, elsewhere=_elsewhere(session))
                    bound = None
                    if self.window.opens_hole(row_id for row_id, _ in rows):
                        # Costs an xid, so only when a new hole needs one (see ordering).
                        bound = int(str(session.scalar(text("SELECT pg_current_xact_id()"))))
                finally:
                    session.rollback()  # read only: nothing to commit, no WAL flush
            return snapshot, rows, bound
        except Exception:
            self.close()  # a broken connection is replaced on the next read
            raise
