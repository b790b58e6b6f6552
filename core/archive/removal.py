"""Removing an archived month's rows, only ever rows that are in its verified file.

Every row removed is first read in the removing transaction and compared with its
line in the file (the same id, the same bytes): a row that changed since the file was
written, or is not in it, stops the removal before anything of it goes. What is
removed of the minted readings is added to `mint_totals.archived_*` in the same
transaction (core.minting.totals.add_archived), so the totals audit holds at every
commit, also after a crash in between.

- PostgreSQL, the month has a partition: one transaction locks the partition against
  writes, compares every row, detaches and drops it, and counts what went. While the
  partition exists every row of its month is in it (PostgreSQL routes them there, and
  refuses a default partition holding rows of an attached range), so the default
  partition is neither locked nor touched. DETACH needs a brief exclusive lock on the
  parent table: it is asked for with a lock timeout and retried, so it never queues
  ingest behind a long transaction.
- SQLite (or a month with no partition): deleted in chunks of CHUNK rows, one short
  transaction each, so writers wait at most one chunk. A crash between chunks leaves a
  month partly removed; the rerun compares and deletes the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, text
from sqlalchemy.exc import OperationalError

from core.archive.files import lines, manifest_entry
from core.archive.fingerprint import minted_totals, month_fingerprint
from core.archive.rows import TABLES, Summary, canonical, month_rows
from core.db.partitions import PARTITIONED, bounds, is_partitioned, partition_name
from core.minting.totals import add_archived

CHUNK = 2_000
LOCK_TIMEOUT = "5s"
LOCK_ATTEMPTS = 6


class ArchiveMismatch(Exception):
    """A row in the database is not (or no longer) the row in the month's archive."""


class _FileRows:
    """Walks the file's lines in id order beside the database's rows in id order."""

    def __init__(self, directory: Path, table: str) -> None:
        self._table = table
        self._lines: Iterator[tuple[int, bytes]] = lines(directory, table)
        self._current: tuple[int, bytes] | None = next(self._lines, None)

    def match(self, row_id: int, line: bytes) -> None:
        while self._current is not None and self._current[0] < row_id:
            self._current = next(self._lines, None)
        if self._current is None or self._current[0] != row_id:
            raise ArchiveMismatch(f"{self._table} row {row_id} is not in the archive")
        if self._current[1] != line:
            raise ArchiveMismatch(
                f"{self._table} row {row_id} differs from its line in the archive (it changed "
                "after the archive was written)"
            )


def _compared(table: str, rows: Iterable[dict[str, Any]], walker: _FileRows) -> Summary:
    """What `rows` add up to, each one checked against its line in the file."""
    summary = Summary()
    for row in rows:
        line = canonical(row)
        walker.match(row["id"], line)
        summary.add(table, row, line)
    return summary


def _count_archived(connection: Connection, table: str, summary: Summary) -> None:
    if table == "meter_readings":
        add_archived(connection, summary.minted_rows, summary.token_base_units)


def has_partition(connection: Connection, table: str, month: date) -> bool:
    if not is_partitioned(connection, table):
        return False
    name = partition_name(table, month)
    return connection.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None


def remove_month(engine: Engine, table: str, month: date, directory: Path) -> str:
    """Remove the month's rows of `table` (each checked against the archive); what was done."""
    with engine.connect() as connection:
        partitioned = has_partition(connection, table, month)
        connection.rollback()
    if partitioned:
        return _drop_partition(engine, table, month, directory)
    return _delete_in_chunks(engine, table, month, directory)


def _drop_partition(engine: Engine, table: str, month: date, directory: Path) -> str:
    name = partition_name(table, month)
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with engine.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                connection.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))
                rows = _unchanged(connection, table, month, directory)
                connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
                connection.execute(text(f"DROP TABLE {name}"))
            return f"partition {name} ({rows} rows) detached and dropped"
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == LOCK_ATTEMPTS:
                raise
            time.sleep(min(2**attempt, 30) / 10)  # a lock timeout: others' work goes first
    raise AssertionError("unreachable")


def _unchanged(connection: Connection, table: str, month: date, directory: Path) -> int:
    """Prove the locked month is what the archive holds, count what goes; its rows.

    With the archive's database fingerprint (core.archive.fingerprint), in one scan in
    the database; an archive written before fingerprints existed is compared row by row.
    """
    entry = manifest_entry(directory, table)
    recorded = entry.get("db_fingerprint")
    if recorded is None:
        summary = _compared(
            table, month_rows(connection, table, month), _FileRows(directory, table)
        )
        _count_archived(connection, table, summary)
        return summary.rows
    if month_fingerprint(connection, table, month) != recorded:
        raise ArchiveMismatch(
            f"{table} rows of {month:%Y-%m} differ from the archive (a row changed, came or "
            "went after the archive was written): nothing was removed; move the month's "
            "archive directory away and rerun to write it again"
        )
    if table == "meter_readings":
        minted, units = minted_totals(connection, month)
        if (minted, units) != (entry["minted_rows"], entry["token_base_units"]):
            raise ArchiveMismatch(
                f"meter_readings of {month:%Y-%m}: {minted} minted rows of {units} base units "
                f"in the database, {entry['minted_rows']} of {entry['token_base_units']} in "
                "the archive: nothing was removed"
            )
        add_archived(connection, minted, units)
    return int(entry["rows"])


def _delete_in_chunks(engine: Engine, table: str, month: date, directory: Path) -> str:
    columns = TABLES[table]
    key = columns.c[PARTITIONED[table]]
    start, end = bounds(month)
    deleted = 0
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Readings an interval amount or a certificate link names go, as they do on
            # PostgreSQL (where no foreign key into a partitioned table exists); the
            # pragma only applies outside a transaction, on this connection only.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            walker = _FileRows(directory, table)
            while True:
                with connection.begin():
                    rows = list(month_rows(connection, table, month, limit=CHUNK))
                    if not rows:
                        break
                    summary = _compared(table, rows, walker)
                    ids = [row["id"] for row in rows]
                    connection.execute(
                        delete(columns).where(columns.c.id.in_(ids), key >= start, key < end)
                    )
                    _count_archived(connection, table, summary)
                deleted += len(rows)
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    return f"{deleted} rows deleted in chunks of {CHUNK}"
