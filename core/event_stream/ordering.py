"""Releasing event ids strictly in order, holding back at a missing id (a hole).

On PostgreSQL ids are drawn when a row is inserted but become visible when its
transaction commits, in any order: a reader that saw id 12 may see id 11 later.
A reader that released 12 would then have to send 11 out of order, or lose it.
So the window releases id n only once every id below it is visible or proven
never to become visible.

The proof: a hole h is noticed only because a larger id k is visible in a
snapshot S. Migration 0002 makes an inserting transaction take its transaction
id (xid) before it draws an event id, and k was drawn after h and committed
before S, so h's transaction got its xid before S was taken. The feed then asks
for a fresh xid, the hole's `bound`: larger than every xid assigned before S
(xids are handed out in order). Once a later snapshot's xmin (the oldest xid
still running) reaches the bound, h's transaction has finished; if h is still
invisible it was rolled back, and the hole is permanent. xids are shared by the
whole cluster, so running transactions known to belong to other databases are
left out (`Snapshot.elsewhere`): another application's long transaction does
not hold up our holes. (S's in-progress list
is not enough: a transaction whose xid is above every finished one when S is
taken is beyond S's xmax and not listed.) SQLite serializes writers and reuses
the rowids of rolled-back inserts, so ids become visible in order and a missing
id is never waited for (snapshot None).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot (`pg_current_snapshot()`) and what is known of its running xids.

    `elsewhere`: running xids seen (after the snapshot) in sessions of other
    databases of the cluster; they cannot hold an id of our events table. They
    are 32-bit (pg_stat_activity.backend_xid): running xids are never 2^32
    apart, so the low 32 bits of a snapshot's 64-bit xid identify it.
    """

    xmin: int
    xmax: int
    in_progress: frozenset[int]
    elsewhere: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        """`xmin:xmax:xip1,xip2,...`, the text form of pg_snapshot."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def finished_before(self, bound: int) -> bool:
        """Whether every transaction of our database with an xid below `bound` had ended.

        Below xmax a running xid is in the in-progress list; at or above it, it is
        not listed at all, so nothing is known until xmax has passed the bound.
        """
        if self.xmin >= bound:
            return True
        return bound <= self.xmax and all(
            xid & 0xFFFFFFFF in self.elsewhere for xid in self.in_progress if xid < bound
        )


@dataclass(frozen=True)
class Hole:
    """A missing id: every transaction that may fill it has an xid below `bound`."""

    bound: int
    seen_at: float


class OrderedWindow(Generic[T]):
    """Turns reads of committed rows (in any id order) into one gap-free, ordered stream.

    `position` is the id up to which everything has been released or settled as
    permanently absent; callers read rows with ids above `seen_upto` plus the
    ids in `holes()`, then pass them to `accept` with the snapshot they read under
    (and an xid bound when `opens_hole` says the rows leave a new hole).
    """

    def __init__(
        self,
        position: int,
        *,
        max_hole_wait: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.position = position
        self.seen_upto = position
        self.max_hole_wait = max_hole_wait
        self.clock = clock
        self.abandoned = 0
        self._held: dict[int, T] = {}
        self._holes: dict[int, Hole] = {}

    def holes(self) -> list[int]:
        return sorted(self._holes)

    @property
    def waiting(self) -> bool:
        """True while a hole may still fill (the caller should read again soon)."""
        return bool(self._holes)

    def opens_hole(self, ids: Iterable[int]) -> bool:
        """Whether accepting rows with these ids leaves a new missing id (it needs a bound)."""
        fresh = sorted({i for i in ids if i > self.seen_upto})
        return bool(fresh) and len(fresh) != fresh[-1] - self.seen_upto

    def accept(
        self,
        rows: Iterable[tuple[int, T]],
        snapshot: Snapshot | None,
        bound: int | None = None,
        checked_upto: int | None = None,
    ) -> list[T]:
        """Take the rows visible under `snapshot`; return those now releasable, in id order.

        `bound` is an xid assigned after `snapshot` was taken; it is needed (on
        PostgreSQL) whenever `opens_hole` is true for these rows. `checked_upto`:
        the read was cut off (a LIMIT) after this id, so holes above it were not
        looked for and prove nothing.
        """
        now = self.clock()
        top = self.seen_upto
        for row_id, item in rows:
            if row_id <= self.position:
                continue  # settled long ago: an abandoned hole that committed after all
            self._held[row_id] = item
            self._holes.pop(row_id, None)
            top = max(top, row_id)
        if top > self.seen_upto:
            missing = [i for i in range(self.seen_upto + 1, top + 1) if i not in self._held]
            if missing and snapshot is not None and bound is None:
                raise ValueError("a new hole needs an xid bound taken after the snapshot")
            hole = Hole(bound or 0, now)
            self._holes.update(dict.fromkeys(missing, hole))
            self.seen_upto = top
        self._settle(snapshot, now, checked_upto)
        return self._release()

    def _settle(self, snapshot: Snapshot | None, now: float, checked_upto: int | None) -> None:
        for hole_id, hole in list(self._holes.items()):
            if checked_upto is not None and hole_id > checked_upto:
                continue
            if snapshot is None or snapshot.finished_before(hole.bound):
                del self._holes[hole_id]  # every possible owner has finished: it never fills
            elif now - hole.seen_at > self.max_hole_wait:
                # A transaction held open this long stalls every client; give up on it.
                # Clients resuming from an earlier id still get the event from the table.
                del self._holes[hole_id]
                self.abandoned += 1
                log.error(
                    "event id %d still uncommitted after %.0f s; live clients will miss it",
                    hole_id,
                    now - hole.seen_at,
                )

    def _release(self) -> list[T]:
        released: list[T] = []
        while self.position < self.seen_upto:
            next_id = self.position + 1
            if next_id in self._holes:
                break
            item = self._held.pop(next_id, None)
            if item is not None:
                released.append(item)
            self.position = next_id
        return released
