"""A closed month's rows as canonical JSON lines, and what they add up to.

One line per row, keys sorted, no spaces: the same rows give the same bytes on SQLite
and PostgreSQL, so a file can be compared with the database row by row and a rerun
writes the same file. Times are RFC 3339 UTC, exact decimals are strings, integers
stay integers (micro-kWh, base units): nothing is rounded on the way out.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, select

from core.db.models import Event, MeterReading, ReadingStatus
from core.db.partitions import PARTITIONED, bounds
from core.units import format_kwh

TABLES: dict[str, Table] = {
    "meter_readings": MeterReading.__table__,  # type: ignore[dict-item]
    "events": Event.__table__,  # type: ignore[dict-item]
}
PAGE = 5_000  # rows per keyset page: bounded memory whatever the month holds


def _plain(value: Any) -> Any:
    """What JSON has no type for (the C encoder asks only for those)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot archive a {type(value).__name__}")


def canonical(row: dict[str, Any]) -> bytes:
    """The row as its archive line (with the newline)."""
    text = json.dumps(
        row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain
    )
    return text.encode() + b"\n"


def month_rows(
    connection: Connection, table: str, month: date, *, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """The month's rows of `table` in id order, read in keyset pages (or only `limit`)."""
    columns = TABLES[table]
    key = columns.c[PARTITIONED[table]]
    start, end = bounds(month)
    after = 0
    left = limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = connection.execute(
            select(columns)
            .where(key >= start, key < end, columns.c.id > after)
            .order_by(columns.c.id)
            .limit(size)
        ).mappings()
        rows = [dict(row) for row in page]
        yield from rows
        if len(rows) < size:
            return
        after = rows[-1]["id"]
        if left is not None:
            left -= len(rows)


@dataclass
class Summary:
    """What a table's part of a month holds; written in the manifest, recomputed on read."""

    rows: int = 0
    first_id: int | None = None
    last_id: int | None = None
    kwh_micro: int = 0
    token_base_units: int = 0  # minted readings' base units
    minted_rows: int = 0
    minted_kwh_micro: int = 0
    by_status: Counter[str] = field(default_factory=Counter)  # readings
    by_type: Counter[str] = field(default_factory=Counter)  # events
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def add(self, table: str, row: dict[str, Any], line: bytes) -> None:
        self.rows += 1
        if self.first_id is None:
            self.first_id = row["id"]
        self.last_id = row["id"]
        self._digest.update(line)
        if table == "events":
            self.by_type[row["type"]] += 1
            return
        self.by_status[row["status"]] += 1
        self.kwh_micro += int(row["kwh_micro"])
        if row["status"] == ReadingStatus.MINTED.value:
            self.minted_rows += 1
            self.minted_kwh_micro += int(row["kwh_micro"])
            self.token_base_units += int(row["token_base_units"] or 0)

    @property
    def content_sha256(self) -> str:
        return self._digest.hexdigest()

    def as_manifest(self, table: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "rows": self.rows,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "content_sha256": self.content_sha256,
        }
        if table == "events":
            entry["by_type"] = dict(sorted(self.by_type.items()))
            return entry
        entry.update(
            kwh=format_kwh(self.kwh_micro, micro=True),
            kwh_micro=self.kwh_micro,
            minted_rows=self.minted_rows,
            minted_kwh=format_kwh(self.minted_kwh_micro, micro=True),
            minted_kwh_micro=self.minted_kwh_micro,
            token_base_units=self.token_base_units,
            by_status=dict(sorted(self.by_status.items())),
        )
        return entry
