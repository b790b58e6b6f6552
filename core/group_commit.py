"""Group commit: work items arriving together are handled as one group, in one transaction.

A commit costs a round trip and a WAL flush whatever it holds, and a statement costs
a round trip and the ORM's and driver's work per call; a thousand meters sending one
reading each at once should pay for a few statements and one commit, not a thousand.
Callers `submit` an item and wait on the returned future; `workers` threads each take
everything queued (up to `max_group` items) and hand it to `handle` as one group. No
timer: while one group is being committed the next one gathers, so a quiet door
answers at once and a busy one answers in bigger groups, not a longer queue.

`handle` returns one answer per item, in order; an answer that is an exception is
raised to that item's caller alone. If `handle` itself raises (the commit failed),
every item of the group gets that error: nothing of the group was stored, each caller
may retry. A future is resolved only after `handle` returns, that is after the
commit: nobody is answered before their row is durable.

Plain threads and concurrent.futures: an asyncio caller awaits
`asyncio.wrap_future(group.submit(item))`, a thread calls `.result()`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

MAX_GROUP = 500


@dataclass(frozen=True, slots=True)
class _Pending(Generic[T, R]):
    item: T
    future: Future[R]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        handle: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        workers: int = 2,
        max_group: int = MAX_GROUP,
        name: str = "group-commit",
    ) -> None:
        self._handle = handle
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Pending[T, R] | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self.groups = 0  # groups handled, for tests and metrics
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> Future[R]:
        """Queue `item`; the future resolves with its answer once its group committed."""
        future: Future[R] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the group commit is closed")
            self._queue.put(_Pending(item, future))
        return future

    def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _take(self) -> tuple[list[_Pending[T, R]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self._max_group:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                # Put back for another worker after this group, which this one finishes.
                self._queue.put(None)
                break
            group.append(pending)
        return group, False

    def _serve(self) -> None:
        while True:
            group, stop = self._take()
            if group:
                self._run(group)
            if stop:
                return

    def _run(self, group: list[_Pending[T, R]]) -> None:
        try:
            answers = self._handle([pending.item for pending in group])
            if len(answers) != len(group):
                raise RuntimeError(f"{len(answers)} answers for a group of {len(group)}")
        except BaseException as error:  # every caller of the group must hear of it
            for pending in group:
                _settle(pending.future, error)
            if not isinstance(error, Exception):
                raise
            return
        finally:
            with self._lock:
                self.groups += 1
        for pending, answer in zip(group, answers, strict=True):
            _settle(pending.future, answer)


def _settle(future: Future[R], answer: R | BaseException) -> None:
    """Resolve a caller's future; one whose caller gave up (cancelled) is left alone: its
    item was handled (and committed) all the same, as a request whose client left."""
    if not future.set_running_or_notify_cancel():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
