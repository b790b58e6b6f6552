"""`archive_before`: every closed month before a given one, written, verified, then removed.

The order per month is what makes a crash harmless at any point:

1. refuse the whole run if any month may not leave yet (core.archive.readiness);
2. write the month's files (one snapshot) and seal them, unless a sealed archive of it
   is already there (a rerun after a crash: the same rows gave the same files);
3. read the archive back and verify every figure (core.archive.files.verify_month);
4. raise the archive horizon to the month's end (core.settings_store.ARCHIVED_BEFORE):
   readings before it are refused from then on, whatever the age limit says;
5. only then remove the rows, each compared with its line in the file
   (core.archive.removal), counting what was minted into mint_totals.archived_*.

A crash before 3 leaves no sealed archive: the rerun writes it again. A crash during 5
leaves rows still to remove: the rerun verifies the archive and removes the rest. Runs
hold the `archive` lock (core.db.locks), so two never work at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from core.archive.files import (
    ArchiveInvalid,
    is_sealed,
    month_dir,
    month_text,
    verify_month,
    write_month,
)
from core.archive.readiness import month_problems
from core.archive.removal import has_partition, remove_month
from core.archive.rows import TABLES
from core.config import TokenizationConfig
from core.db.engine import read_only
from core.db.locks import exclusive
from core.db.migrate import current_revision
from core.db.partitions import (
    PARTITIONED,
    bounds,
    is_partitioned,
    month_of,
    months,
    next_month,
)
from core.settings_store import effective_config, raise_archive_horizon
from core.units import format_kwh

LOCK = "archive"


class ArchiveRefused(Exception):
    """The run may not archive: each problem names its fix. Nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class MonthPlan:
    month: date
    directory: Path
    rows: dict[str, int]  # in the database now
    partitions: dict[str, bool]
    sealed: bool
    problems: list[str] = field(default_factory=list)

    @property
    def in_database(self) -> bool:
        return any(self.rows.values()) or any(self.partitions.values())


def _first_month(connection: Connection, before: date) -> date | None:
    start = bounds(before)[0]
    found: list[date] = []
    for table, key in PARTITIONED.items():
        column = TABLES[table].c[key]
        oldest = connection.execute(select(func.min(column)).where(column < start)).scalar()
        if oldest is not None:
            found.append(month_of(oldest))
        if is_partitioned(connection, table):
            found += [month for month in months(connection, table) if month < before]
    return min(found, default=None)


def plan_months(
    session: Session, before: date, root: Path, *, now: datetime, config: TokenizationConfig
) -> list[MonthPlan]:
    """The months before `before` that the database still holds, each with its problems."""
    connection = session.connection()
    plans: list[MonthPlan] = []
    month = _first_month(connection, before)
    while month is not None and month < before:
        start, end = bounds(month)
        rows = {}
        for table, key in PARTITIONED.items():
            column = TABLES[table].c[key]
            rows[table] = int(
                connection.execute(
                    select(func.count()).where(column >= start, column < end)
                ).scalar()
                or 0
            )
        partitions = {table: has_partition(connection, table, month) for table in PARTITIONED}
        directory = month_dir(root, month)
        plan = MonthPlan(month, directory, rows, partitions, is_sealed(directory))
        if plan.in_database:
            plan.problems = month_problems(session, month, now=now, config=config)
            plans.append(plan)
        month = next_month(month)
    return plans


def _snapshot(engine: Engine) -> Engine:
    """Reads that see one moment: REPEATABLE READ on PostgreSQL, a read transaction on SQLite."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return read_only(engine)


def describe(manifest: dict[str, Any]) -> str:
    readings, events = manifest["tables"]["meter_readings"], manifest["tables"]["events"]
    return (
        f"meter_readings {readings['rows']} rows ({readings['minted_rows']} minted, "
        f"{format_kwh(readings['kwh_micro'], micro=True)} kWh, "
        f"{readings['token_base_units']} base units), events {events['rows']} rows"
    )


def archive_before(
    engine: Engine,
    base_config: TokenizationConfig,
    before: date,
    root: Path,
    *,
    now: datetime,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> list[MonthPlan]:
    """Archive every month before `before`; the months' plans. Raises ArchiveRefused."""
    with exclusive(engine, LOCK):
        config = effective_config(engine, base_config)
        with Session(read_only(engine)) as session:
            plans = plan_months(session, before, root, now=now, config=config)
        problems = [problem for plan in plans for problem in plan.problems]
        if problems:
            raise ArchiveRefused(problems)
        if not plans:
            say(f"nothing to archive before {month_text(before)}")
        for plan in plans:
            _archive_month(engine, plan, dry_run=dry_run, say=say)
    return plans


def _archive_month(
    engine: Engine, plan: MonthPlan, *, dry_run: bool, say: Callable[[str], None]
) -> None:
    name, directory = month_text(plan.month), plan.directory
    removals = [
        f"{table}: "
        + (
            f"detach and drop partition of {rows} rows"
            if plan.partitions[table]
            else f"delete {rows} rows"
        )
        for table, rows in plan.rows.items()
    ]
    if dry_run:
        source = "verify the archive there" if plan.sealed else "write and verify"
        say(f"{name}: would {source} {directory}, then {'; '.join(removals)}")
        return
    if plan.sealed:
        try:
            manifest = verify_month(directory, plan.month)
        except ArchiveInvalid as exc:
            raise ArchiveRefused(
                [
                    f"{name}: the archive in {directory} does not verify ({exc}); if every row "
                    "of the month is still in the database, move that directory away and "
                    "rerun to write it again, otherwise restore it from a copy"
                ]
            ) from exc
        say(f"{name}: the archive in {directory} verifies ({describe(manifest)})")
    else:
        with _snapshot(engine).connect() as connection:
            write_month(connection, plan.month, directory, current_revision(engine))
            connection.rollback()
        manifest = verify_month(directory, plan.month)
        say(f"{name}: wrote and verified {directory} ({describe(manifest)})")
    # First the horizon, then the rows: from the moment a row may be gone, a resend of
    # it is refused as archived (it would no longer be a duplicate).
    with Session(engine) as session:
        raise_archive_horizon(session, bounds(plan.month)[1], by=LOCK)
        session.commit()
    for table in TABLES:
        say(f"{name}: {table}: {remove_month(engine, table, plan.month, directory)}")
