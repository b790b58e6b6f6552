"""Whether a month may leave the database: closed, every reading final, nothing waiting on it.

A month is archived whole or not at all, so each reason it must stay is reported with
what fixes it, and the run refuses before writing anything:

- still open: a reading of the month can still be accepted while its end is less than
  TOKENIZATION_READING_MAX_AGE_DAYS ago (settled telemetry too: samples have the same
  age limit). Archived rows can no longer refuse a duplicate by UNIQUE(meter_id,
  reading_timestamp), so the age limit is what keeps a resent old reading out;
- readings not final: pending, in review, minting or failed readings are still on their
  way (minted and rejected ones are final);
- telemetry intervals of the month still open: closing them makes readings of it;
- minted readings that certificate issuance has not yet turned into certificates;
- SQLite only: the table's newest row (its largest id) is of the month. SQLite gives a
  new row the largest id + 1, so once that row is deleted its id would be given again,
  to a row that interval amounts, certificate links and the archive already know by
  another (PostgreSQL's sequences never hand an id out twice).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.archive.files import month_text
from core.archive.rows import TABLES
from core.certificates.issuance import awaiting_issue
from core.config import TokenizationConfig
from core.db.models import IntervalStatus, MeterReading, ReadingStatus, SettlementInterval
from core.db.partitions import PARTITIONED, bounds

FINAL = (ReadingStatus.MINTED.value, ReadingStatus.REJECTED.value)


def open_until(month: date, config: TokenizationConfig) -> datetime:
    """When the last reading of `month` stops being accepted."""
    return bounds(month)[1] + timedelta(days=config.reading_max_age_days)


def month_problems(
    session: Session, month: date, *, now: datetime, config: TokenizationConfig
) -> list[str]:
    """Why `month` cannot be archived now, each with its fix; empty when it can."""
    name = month_text(month)
    start, end = bounds(month)
    problems: list[str] = []
    until = open_until(month, config)
    if until > now:
        problems.append(
            f"{name} is not closed: readings of it are still accepted until "
            f"{until.isoformat()} (TOKENIZATION_READING_MAX_AGE_DAYS="
            f"{config.reading_max_age_days}); rerun after then, or pass an earlier --before"
        )
        return problems  # the rest can still change
    waiting = dict(
        session.execute(
            select(MeterReading.status, func.count())
            .where(
                MeterReading.reading_timestamp >= start,
                MeterReading.reading_timestamp < end,
                MeterReading.status.not_in(FINAL),
            )
            .group_by(MeterReading.status)
        ).all()
    )
    if waiting:
        counts = ", ".join(f"{status} {count}" for status, count in sorted(waiting.items()))
        problems.append(
            f"{name} holds {sum(waiting.values())} readings not yet final ({counts}): let the "
            "scheduler mint what is pending or minting, retry failed readings (Minting page) "
            "and decide those in review (Review page: approve or reject), then rerun"
        )
    intervals = session.scalar(
        select(func.count()).where(
            SettlementInterval.status == IntervalStatus.OPEN.value,
            SettlementInterval.interval_start >= start,
            SettlementInterval.interval_start < end,
        )
    )
    if intervals:
        problems.append(
            f"{name} has {intervals} telemetry intervals not yet closed: run the scheduler "
            "(its settle job closes them after TOKENIZATION_SETTLEMENT_GRACE_SECS), then rerun"
        )
    problems += _newest_rows(session, month)
    unissued = awaiting_issue(session, start, end)
    if unissued:
        problems.append(
            f"{name} holds {unissued} minted readings not yet issued as certificates: run the "
            "scheduler until its certificates job has issued them, then rerun"
        )
    return problems


def _newest_rows(session: Session, month: date) -> list[str]:
    if session.get_bind().dialect.name != "sqlite":
        return []
    start, end = bounds(month)
    problems = []
    for table, key in PARTITIONED.items():
        columns = TABLES[table].c
        newest = session.execute(
            select(columns.id, columns[key]).order_by(columns.id.desc()).limit(1)
        ).first()
        if newest is not None and start <= newest[1] < end:
            problems.append(
                f"{month_text(month)} holds the newest row of {table} (id {newest[0]}): on "
                "SQLite its id would be given again to the next row once it is deleted; "
                f"archive {month_text(month)} once a newer row has been written"
            )
    return problems
