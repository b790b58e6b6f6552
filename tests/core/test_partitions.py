"""Monthly partitions on PostgreSQL (core.db.partitions, migration 0201)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from core.db.engine import create_db_engine
from core.db.locks import exclusive
from core.db.partitions import LOCK, ensure_ahead, ensure_months, months, partition_name

pytestmark = pytest.mark.postgres


def this_month() -> date:
    now = datetime.now(UTC)
    return date(now.year, now.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def test_the_migration_partitions_both_tables_from_now_to_three_ahead(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    with engine.connect() as connection:
        for table in ("meter_readings", "events"):
            have = months(connection, table)
            assert [add_months(this_month(), n) for n in range(4)] == have[-4:]
            assert connection.execute(text(f"SELECT to_regclass('{table}_default')")).scalar()
    assert ensure_ahead(engine, datetime.now(UTC)) == []  # all there: nothing made
    engine.dispose()


def test_partitions_are_created_ahead_once(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    later = add_months(this_month(), 5)
    moment = datetime(later.year, later.month, 2, tzinfo=UTC)
    created = ensure_ahead(engine, moment)
    expected = [add_months(this_month(), n) for n in range(5, 9)]
    assert created == [partition_name(t, m) for t in ("meter_readings", "events") for m in expected]
    assert ensure_ahead(engine, moment) == []
    engine.dispose()


def test_rows_already_in_the_default_partition_move_into_their_month(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    far = date(2031, 7, 1)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO events (type, payload, created_at) "
                "VALUES ('mint_requested', '{}', '2031-07-09T10:00:00Z')"
            )
        )
    assert ensure_months(engine, [far]) == [
        partition_name(t, far) for t in ("meter_readings", "events")
    ]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events_y2031m07")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM events_default")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM events")).scalar() == 1
    engine.dispose()


CHILD = """
import json, sys
from datetime import datetime
from core.db.engine import create_db_engine
from core.db.partitions import ensure_ahead
engine = create_db_engine(sys.argv[1])
print(json.dumps(ensure_ahead(engine, datetime.fromisoformat(sys.argv[2]))))
"""


def _waiting_on_lock(engine) -> int:
    """Advisory-lock waiters in this test's own database (pg_locks spans the cluster)."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                )
            ).scalar()
        )


def test_two_processes_at_once_create_each_partition_once(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    later = add_months(this_month(), 10)
    moment = datetime(later.year, later.month, 3, tzinfo=UTC).isoformat()
    with exclusive(engine, LOCK):  # both children queue behind us, then race
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, pg_url, moment], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while _waiting_on_lock(engine) < 2:  # a condition, not a guess: both are waiting
            assert time.monotonic() < deadline, "the children never reached the lock"
            assert all(child.poll() is None for child in children)
    outputs = [json.loads(child.communicate(timeout=60)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    made = outputs[0] + outputs[1]
    expected = [add_months(this_month(), n) for n in range(10, 14)]
    assert sorted(made) == sorted(
        partition_name(t, m) for t in ("meter_readings", "events") for m in expected
    )
    assert [] in outputs  # the one that waited found the work done
    engine.dispose()
