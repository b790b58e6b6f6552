"""Benchmark: archiving one closed month (core.archive) on PostgreSQL and SQLite.

    .venv/bin/python -m bench.archive [--rows N] [--database-url postgresql+psycopg://...]

On a fresh, migrated database (PostgreSQL: created and dropped; SQLite: a temporary
file) seeds N minted readings of 1,000 meters in September 2026 and one event per
reading, then runs `archive_before(--before 2026-10)` and prints the time to write
and verify the files, the time to remove the month (PostgreSQL: compare, detach and
drop; SQLite: compare and delete in chunks), rows per second, the archive's bytes per
reading against the database's, and checks that the totals audit still holds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text, update
from sqlalchemy.orm import Session

from bench.databases import migrated_pg_database
from core.archive import archive_before
from core.config import TokenizationConfig
from core.db.engine import create_db_engine, session_factory
from core.db.migrate import upgrade
from core.db.models import Event, MeterReading, MintTotal
from core.db.partitions import ensure_months
from core.minting.totals import GRX, full_sum_audit
from tests.support.seed import seed_producers

SEP, OCT = date(2026, 9, 1), date(2026, 10, 1)
METERS = 1_000
CHUNK = 10_000


def seed(url: str, rows: int) -> float:
    engine = create_db_engine(url)
    ensure_months(engine, [SEP])
    start = time.perf_counter()
    with Session(engine) as session:
        producers = seed_producers(session, METERS, namespace="arch")
        base = datetime(2026, 9, 1, tzinfo=UTC)
        units_total = 0
        for first in range(0, rows, CHUNK):
            readings, events = [], []
            for index in range(first, min(first + CHUNK, rows)):
                producer = producers[index % METERS]
                at = base + timedelta(minutes=15 * (index // METERS))
                micro = 1 + (index * 104_729) % 25_000_000
                units_total += micro * 1000
                readings.append(
                    {
                        "meter_id": producer.meter_id,
                        "user_id": producer.user_id,
                        "wallet_address": producer.wallet,
                        "kwh_micro": micro,
                        "reading_timestamp": at,
                        "submitted_at": at + timedelta(seconds=2),
                        "status": "minted",
                        "meter_signature": "x" * 88,
                        "token_base_units": micro * 1000,
                        "ratio_applied": "1",
                        "mint_tx_signature": "s" * 88,
                        "minted_at": at + timedelta(seconds=30),
                        "attempts": 0,
                    }
                )
                events.append(
                    {
                        "type": "meter_reading_received",
                        "user_id": producer.user_id,
                        "payload": {"reading_timestamp": at.isoformat(), "kwh_micro": micro},
                        "created_at": at + timedelta(seconds=2),
                    }
                )
            session.execute(insert(MeterReading), readings)
            session.execute(insert(Event), events)
            session.commit()
        # A newer reading and event (this month), as a live system has: SQLite keeps a
        # month holding a table's newest row (core.archive.readiness).
        now = datetime.now(UTC)
        latest = {**readings[-1], "reading_timestamp": now, "submitted_at": now}
        latest.update(status="rejected", token_base_units=None, minted_at=None)
        session.execute(insert(MeterReading), [latest])
        session.execute(insert(Event), [{**events[-1], "created_at": now}])
        session.execute(
            update(MintTotal)
            .where(MintTotal.name == GRX)
            .values(
                readings=MintTotal.readings + rows, base_units=MintTotal.base_units + units_total
            )
        )
        session.commit()
    engine.dispose()
    return time.perf_counter() - start


def database_bytes(engine) -> int | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT pg_total_relation_size('meter_readings_y2026m09') + "
                    "pg_total_relation_size('events_y2026m09')"
                )
            ).scalar()
        )


def run(name: str, url: str, rows: int) -> None:
    seeded = seed(url, rows)
    engine = create_db_engine(url)
    before = database_bytes(engine)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "archive"
        marks: list[tuple[float, float, str]] = []
        start, cpu = time.perf_counter(), time.process_time()
        archive_before(
            engine,
            TokenizationConfig(),
            OCT,
            root,
            now=datetime.now(UTC),
            say=lambda line: marks.append((time.perf_counter(), time.process_time(), line)),
        )
        files = sum(path.stat().st_size for path in (root / "2026-09").iterdir())
        readings_file = (root / "2026-09" / "meter_readings.jsonl.gz").stat().st_size
    written, written_cpu = marks[0][0] - start, marks[0][1] - cpu
    removed, removed_cpu = marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1]
    with session_factory(engine)() as session:
        audit = full_sum_audit(session)
    engine.dispose()
    rows_all = 2 * rows
    how = marks[-2][2].split(": ", 2)[-1]
    ratio = f", {before / files:.1f}x the archive" if before else ""
    lines = [
        f"{name}: {rows:,} minted readings + {rows:,} events in 2026-09 (seeded in {seeded:.1f} s)",
        f"  write + verify  {written:6.1f} s = {rows_all / written:,.0f} rows/s wall, "
        f"{written_cpu / rows_all * 1e6:.0f} us CPU per row in this process",
        f"  remove          {removed:6.1f} s = {rows_all / removed:,.0f} rows/s wall, "
        f"{removed_cpu / rows_all * 1e6:.0f} us CPU per row ({how})",
        f"  archive         {files:,} bytes ({readings_file / rows:.1f} per reading compressed)",
        f"  database        {before or 0:,} bytes (the month's partitions with indexes{ratio})",
        f"  totals audit    {'OK' if audit.ok else 'MISMATCH'} ({audit.summed_readings:,} rows)",
    ]
    for line in lines if before else [line for line in lines if "database" not in line]:
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    with migrated_pg_database(args.database_url) as pg:
        run("postgresql", pg, args.rows)
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = f"sqlite:///{scratch}/bench.db"
        upgrade(sqlite)
        run("sqlite", sqlite, args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
