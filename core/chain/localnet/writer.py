"""The ledger's single writer: a thread that commits queued writes in order.

Committing (and its fsync) off the event loop lets the node execute the next
transaction while the last one reaches the disk; sqlite3 releases the GIL while
it writes. Writes that queued up meanwhile share one commit. Order is kept, so
the file always holds a prefix of what the node did; the server answers only
after the writes before an answer are committed (see rpc.Dispatcher).

A failed commit means memory holds state the disk does not: the process stops
at once (fail-stop) and a restart resumes from the last good commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger(__name__)

Write = Callable[[sqlite3.Connection], None]
# Enough to drain a burst, small enough to keep one commit short.
MAX_GROUP = 64
EXIT_LEDGER_WRITE_FAILED = 70


def fail_stop(exc: BaseException) -> None:
    log.critical("localnet: ledger write failed (%s); stopping so memory cannot outrun disk", exc)
    logging.shutdown()
    os._exit(EXIT_LEDGER_WRITE_FAILED)


class LedgerWriter:
    def __init__(
        self, db: sqlite3.Connection, on_failure: Callable[[BaseException], None] = fail_stop
    ) -> None:
        self._db = db
        self._on_failure = on_failure
        self._queue: queue.SimpleQueue[tuple[Write, Future[None]] | None] = queue.SimpleQueue()
        self._last: Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Write) -> Future[None]:
        future: Future[None] = Future()
        self._queue.put((write, future))
        self._last = future
        return future

    def barrier(self) -> Future[None] | None:
        """Done once everything submitted so far is committed (None: nothing pending)."""
        last = self._last
        return None if last is None or last.done() else last

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
            if not self._commit(group):
                return

    def _commit(self, group: list[tuple[Write, Future[None]]]) -> bool:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for write, _ in group:
                write(self._db)
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            for _, future in group:
                future.set_exception(exc)
            self._on_failure(exc)
            return False
        for _, future in group:
            future.set_result(None)
        return True
