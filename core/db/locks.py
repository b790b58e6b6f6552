"""Named locks held across processes that share one database.

Work that must happen once per database however many api and scheduler
processes start together (creating the GRX mint, creating partitions) runs
inside `exclusive(engine, name)`:

- PostgreSQL: a session advisory lock (`pg_advisory_lock`) on a connection of
  its own, keyed by a stable 64-bit hash of `name`. It is held across network
  calls (a mint creation waits for confirmation), so it is not a transaction
  lock: no transaction stays open meanwhile, and the server drops the lock if
  the process dies.
- SQLite: an exclusive `flock` on `<database file>.<name>.lock`. SQLite's own
  writer lock would also serialise, but holding it for seconds would stall
  every other writer past its busy timeout; the file lock blocks only the
  processes asking for the same name, and the kernel releases it on death.
  An in-memory database belongs to one process and needs no lock.

The holder must re-check what it came to create once it has the lock: the
process that waited finds the work done.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (pg_advisory_lock's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_file(engine: Engine, name: str) -> Path | None:
    """The file whose flock stands for `name` on SQLite; None for an in-memory database."""
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return None
    return Path(f"{database}.{name}.lock")


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold the database-wide lock `name` for the block (waits for another holder)."""
    if engine.dialect.name == "postgresql":
        key = lock_key(name)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()  # no transaction stays open while the lock is held
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        return
    path = lock_file(engine, name)
    if path is None:
        yield
        return
    # 0600 like everything beside the database (core.file_modes warns about wider files).
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def engine_of(sessions: sessionmaker[Session]) -> Engine:
    """The engine a session factory binds (core.db.engine.session_factory binds one)."""
    bind = sessions.kw["bind"]
    assert isinstance(bind, Engine), bind
    return bind
