"""Per-day certificate totals (certificate_daily), added to in the caller's transaction.

An upsert adds Wh to (day, technology, grid region, status): on SQLite and
PostgreSQL alike `INSERT ... ON CONFLICT DO UPDATE SET wh = wh + excluded.wh`,
so concurrent writers add, never overwrite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.models import CertificateDaily

Key = tuple[date, str, str, str]  # day, technology, grid region, status


def add_daily(session: Session, amounts: Iterable[tuple[Key, int]]) -> None:
    totals: dict[Key, int] = defaultdict(int)
    for key, wh in amounts:
        if wh:
            totals[key] += wh
    if not totals:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for (day, technology, region, status), wh in sorted(totals.items()):
        statement = insert(CertificateDaily).values(
            day=day, technology=technology, grid_region=region, status=status, wh=wh
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["day", "technology", "grid_region", "status"],
                set_={"wh": CertificateDaily.wh + statement.excluded.wh},
            )
        )
