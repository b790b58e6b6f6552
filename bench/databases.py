"""The throwaway databases benchmarks run on: which backends, and one fresh database each.

A benchmark must not touch a database anyone else uses, nor leave one behind: a
PostgreSQL database is created beside the one its admin URL names and dropped WITH
(FORCE) afterwards (a server the benchmark started may still hold connections); a
SQLite database is a file in a directory the caller removes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db.migrate import upgrade


def pg_reachable(admin_url: str) -> bool:
    """Whether PostgreSQL at `admin_url` answers within a few seconds."""
    engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure means "not usable here"
        return False
    finally:
        engine.dispose()


def chosen_backends(choice: str, pg_url: str) -> list[str]:
    """The backends a `--backend` choice names: `both`, one of them, or `auto` (SQLite,
    and PostgreSQL too when `pg_url` answers)."""
    if choice == "both":
        return ["sqlite", "postgresql"]
    if choice == "auto":
        return ["sqlite", "postgresql"] if pg_reachable(pg_url) else ["sqlite"]
    return [choice]


def admin_execute(admin_url: str, statement: str) -> None:
    """`statement` outside a transaction (CREATE DATABASE, CHECKPOINT), on `admin_url`."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def temporary_pg_database(admin_url: str, prefix: str = "gtx_bench_") -> Iterator[str]:
    """The URL of a new, empty database beside `admin_url`'s, dropped on exit."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_pg_database(admin_url: str, prefix: str = "gtx_bench_") -> Iterator[str]:
    """temporary_pg_database, migrated to the tree's head."""
    with temporary_pg_database(admin_url, prefix) as url:
        upgrade(url)
        yield url


@contextmanager
def fresh_database(backend: str, directory: str | Path, pg_url: str) -> Iterator[str]:
    """The URL of an empty database on `backend`: SQLite's file bench.db in `directory`,
    or a temporary PostgreSQL database beside `pg_url`'s. Not migrated."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    with temporary_pg_database(pg_url) as url:
        yield url
