"""Benchmark: what the shared per-meter reading budget costs an ingest request.

    .venv/bin/python -m bench.reading_budget [--database-url postgresql+psycopg://...] [--spends N]

On a fresh, migrated PostgreSQL database (dropped at the end) with --meters
meters, spends one reading --spends times round robin over the meters, first
with the in-memory ReadingBudget, then with the shared one (one INSERT ... ON
CONFLICT DO UPDATE per spend, core.readings.shared_budget). Prints the wall
time and this process's CPU per spend, and PostgreSQL's CPU per spend (its
processes' CPU over the run). Checks: every spend granted (the budget is large).
"""

from __future__ import annotations

import argparse
import os
import time

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.databases import migrated_pg_database
from bench.ingest import _cpu_secs, _pids
from core.db.engine import create_db_engine
from core.readings.budget import ReadingBudget
from core.readings.shared_budget import reading_budget
from tests.factories import make_meter


def postgres_cpu(database: str) -> float:
    """CPU seconds of the bench database's backends and the WAL writer (as bench.ingest)."""
    return _cpu_secs(_pids("-u", "postgres", "-f", f"{database}|walwriter"))


def measure(name: str, budget, meters: list[int], spends: int, database: str) -> None:
    wall, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu(database)
    for index in range(spends):
        budget.spend(meters[index % len(meters)], 1)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    pg = postgres_cpu(database) - pg
    print(
        f"{name}: {spends} spends in {wall:.2f} s = {wall / spends * 1e3:.3f} ms each; "
        f"CPU per spend: this process {cpu / spends * 1e3:.3f} ms, "
        f"postgres {pg / spends * 1e3:.3f} ms; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--database-url", default=default_url)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--spends", type=int, default=20_000)
    args = parser.parse_args()
    with migrated_pg_database(args.database_url) as url:
        engine = create_db_engine(url)
        with Session(engine, expire_on_commit=False) as session:
            meters = [make_meter(session).meter.id for _ in range(args.meters)]
        engine.dispose()
        limit = args.spends * 10
        database = make_url(url).database or ""
        measure("in memory", ReadingBudget(limit, limit), meters, args.spends, database)
        shared = reading_budget(url, limit, limit)
        measure("shared (PostgreSQL)", shared, meters, args.spends, database)
        shared.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
