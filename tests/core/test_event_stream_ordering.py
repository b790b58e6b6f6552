"""OrderedWindow: ids released strictly in order, holes held until filled or proven permanent."""

from __future__ import annotations

import random

import pytest

from core.event_stream.ordering import OrderedWindow, Snapshot


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snap(xmin: int, *running: int, xmax: int | None = None) -> Snapshot:
    """A snapshot whose oldest running transaction is `xmin` (more may run)."""
    xmax = xmax or max([xmin, *running]) + 10
    return Snapshot(xmin=xmin, xmax=xmax, in_progress=frozenset({xmin, *running}))


def rows(*ids: int) -> list[tuple[int, str]]:
    return [(i, f"e{i}") for i in ids]


def test_snapshot_text_is_parsed() -> None:
    assert Snapshot.parse("10:20:12,15") == Snapshot(10, 20, frozenset({12, 15}))
    assert Snapshot.parse("10:10:") == Snapshot(10, 10, frozenset())


def test_consecutive_ids_are_released_in_order() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert not window.opens_hole([2, 1, 3])
    assert window.accept(rows(2, 1, 3), snap(55)) == ["e1", "e2", "e3"]
    assert (window.position, window.waiting) == (3, False)


def test_a_hole_holds_back_later_ids_until_it_fills() -> None:
    window: OrderedWindow[str] = OrderedWindow(10)
    assert window.opens_hole([11, 13, 14])
    assert window.accept(rows(11, 13, 14), snap(55), bound=60) == ["e11"]
    assert window.holes() == [12] and window.waiting
    # Read again: a transaction older than the bound still runs; 12 is still missing.
    assert window.accept([], snap(59)) == []
    assert window.accept(rows(12), snap(59)) == ["e12", "e13", "e14"]
    assert (window.position, window.waiting) == (14, False)


def test_a_hole_is_permanent_once_every_older_transaction_has_finished() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(1, 3), snap(55), bound=60) == ["e1"]
    assert window.accept([], snap(59)) == []
    # Everything that started before the bound has finished and 2 never became visible:
    # it was rolled back. Transactions that started later cannot hold it (see ordering).
    assert window.accept([], snap(60)) == ["e3"]
    assert window.position == 3


def test_a_hole_is_not_settled_by_the_read_that_found_it() -> None:
    # Its owner may have an xid at or above that snapshot's xmax, where nothing is listed.
    window: OrderedWindow[str] = OrderedWindow(0)
    nothing_listed = Snapshot(xmin=58, xmax=58, in_progress=frozenset())
    assert window.accept(rows(2), nothing_listed, bound=60) == []
    assert window.accept([], Snapshot(xmin=61, xmax=61, in_progress=frozenset())) == ["e2"]


def test_transactions_of_other_databases_do_not_hold_a_hole() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(2), snap(55), bound=60) == []
    assert window.accept([], snap(55, 57)) == []  # both may be ours
    other_database = Snapshot(55, 70, frozenset({55, 57}), elsewhere=frozenset({55, 57}))
    assert window.accept([], other_database) == ["e2"]


def test_a_new_hole_on_postgresql_needs_a_bound() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    with pytest.raises(ValueError, match="bound"):
        window.accept(rows(2), snap(55))


def test_without_snapshots_missing_ids_are_never_waited_for() -> None:
    # SQLite: ids become visible in order, so a missing id was never committed.
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(1, 3), None) == ["e1", "e3"]
    assert not window.waiting


def test_later_holes_keep_their_own_bounds() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(2), snap(55), bound=60) == []  # 1 is missing
    assert window.accept(rows(4), snap(55), bound=70) == []  # 3 is missing
    assert window.accept(rows(1), snap(65)) == ["e1", "e2"]
    assert window.holes() == [3]
    assert window.accept([], snap(70)) == ["e4"]


def test_a_hole_open_too_long_is_given_up() -> None:
    clock = FakeClock()
    window: OrderedWindow[str] = OrderedWindow(0, max_hole_wait=30, clock=clock)
    assert window.accept(rows(2), snap(55), bound=60) == []
    clock.now += 29
    assert window.accept([], snap(55)) == []
    clock.now += 2
    assert window.accept([], snap(55)) == ["e2"]
    assert window.abandoned == 1
    # If it commits after all, it is not sent out of order (replay still has it).
    assert window.accept(rows(1, 3), snap(80)) == ["e3"]


def test_the_same_row_read_twice_is_released_once() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(1, 3), snap(55), bound=60) == ["e1"]
    assert window.accept(rows(2, 3), snap(60)) == ["e2", "e3"]
    assert window.accept(rows(3), snap(60)) == []


def test_holes_beyond_a_cut_off_read_are_not_settled() -> None:
    window: OrderedWindow[str] = OrderedWindow(0)
    assert window.accept(rows(1, 4), snap(55), bound=60) == ["e1"]
    # Everything older has finished, but this read stopped at id 2 (a LIMIT): 3 was
    # not looked for, so it may be visible and must not be declared missing.
    assert window.accept(rows(2), snap(60), checked_upto=2) == ["e2"]
    assert window.holes() == [3]
    assert window.accept(rows(3), snap(60)) == ["e3", "e4"]


class Simulation:
    """PostgreSQL's visibility rules in miniature: xids in order, ids from a sequence after
    the xid (migration 0002), rows visible once their transaction commits."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_xid, self.next_id = 100, 1
        self.running: dict[int, list[int]] = {}  # xid -> ids drawn
        self.committed: list[int] = []
        self.window: OrderedWindow[int] = OrderedWindow(0, max_hole_wait=float("inf"))
        self.released: list[int] = []

    def begin(self) -> None:
        self.running[self.next_xid] = []
        self.next_xid += 1

    def draw(self) -> None:
        if self.running:
            self.running[self.rng.choice(list(self.running))].append(self.next_id)
            self.next_id += 1

    def finish(self, commit: bool) -> None:
        if self.running:
            ids = self.running.pop(self.rng.choice(list(self.running)))
            if commit:
                self.committed.extend(ids)

    def read(self) -> None:
        # xmax: one past the newest finished xid; running xids below it are listed.
        finished = [x for x in range(100, self.next_xid) if x not in self.running]
        xmax = max(finished, default=99) + 1
        running = frozenset(x for x in self.running if x < xmax)
        xmin = min(self.running, default=xmax)
        snapshot = Snapshot(xmin=min(xmin, xmax), xmax=xmax, in_progress=running)
        holes = set(self.window.holes())
        wanted = sorted(i for i in self.committed if i > self.window.seen_upto or i in holes)
        limit = self.rng.randint(1, 5)
        rows = [(i, i) for i in wanted[:limit]]
        bound = None
        if self.window.opens_hole(i for i, _ in rows):
            bound, self.next_xid = self.next_xid, self.next_xid + 1  # the reader's own xid
        cut = rows[-1][0] if len(rows) == limit else None
        self.released.extend(self.window.accept(rows, snapshot, bound, cut))


def test_random_interleavings_release_every_commit_once_in_order() -> None:
    for seed in range(300):
        rng = random.Random(seed)
        sim = Simulation(rng)
        for _ in range(rng.randint(5, 80)):
            step = rng.random()
            if step < 0.2:
                sim.begin()
            elif step < 0.5:
                sim.draw()
            elif step < 0.65:
                sim.finish(commit=rng.random() < 0.7)
            else:
                sim.read()
        while sim.running:
            sim.finish(commit=rng.random() < 0.7)
        for _ in range(len(sim.committed) + 2):
            sim.read()
        assert sim.released == sorted(sim.committed), f"seed {seed}"
