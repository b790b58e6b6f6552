"""The schema on both databases: migrations, constraints, indexes, exact storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import create_db_engine
from core.db.migrate import (
    DatabaseNotMigrated,
    current_revision,
    downgrade,
    ensure_migrated,
    head_revision,
    upgrade,
)
from core.db.models import Meter, MeterReading, User

TABLES = {
    "users",
    "meters",
    "meter_readings",
    "mint_batches",
    "mint_requests",
    "events",
    "settings",
    "token_mints",
}


def _prosumer_with_meter(session: Session) -> Meter:
    user = User(username="alice", role="prosumer", password_hash="x", wallet_address="w")
    session.add(user)
    session.flush()
    meter = Meter(serial="M-1", owner_id=user.id, public_key="pk", api_key_hash="h" * 64)
    session.add(meter)
    session.flush()
    return meter


def _reading(meter: Meter, at: datetime, micro: int = 1_000_000) -> MeterReading:
    return MeterReading(
        meter_id=meter.id,
        user_id=meter.owner_id,
        wallet_address="w",
        kwh_micro=micro,
        reading_timestamp=at,
        meter_signature="sig",
    )


def test_migrations_create_the_schema_and_downgrade_cleanly(engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert current_revision(engine) == head_revision()
    downgrade(url, "base")
    assert not (TABLES & set(inspect(engine).get_table_names()))
    assert current_revision(engine) is None
    upgrade(url)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_claim_index_is_partial_on_pending(engine) -> None:
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("meter_readings")}
    claim = indexes["ix_meter_readings_claim"]
    where = claim.get("dialect_options", {})
    assert "pending" in str(where.get(f"{engine.dialect.name}_where"))


def test_one_reading_per_meter_and_timestamp(sessions: sessionmaker[Session]) -> None:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with sessions() as session:
        meter = _prosumer_with_meter(session)
        session.add(_reading(meter, at))
        session.commit()
        session.add(_reading(meter, at, micro=2))
        with pytest.raises(IntegrityError):
            session.commit()


def test_kwh_must_be_positive(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        meter = _prosumer_with_meter(session)
        session.add(_reading(meter, datetime.now(UTC), micro=0))
        with pytest.raises(IntegrityError):
            session.commit()


def test_foreign_keys_are_enforced(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.add(Meter(serial="orphan", owner_id=999, public_key="p", api_key_hash="a" * 64))
        with pytest.raises(IntegrityError):
            session.commit()


def test_times_come_back_aware_utc_and_amounts_exact(sessions: sessionmaker[Session]) -> None:
    bangkok = timezone(timedelta(hours=7))
    at = datetime(2026, 11, 1, 19, 30, 15, 123000, tzinfo=bangkok)
    with sessions() as session:
        meter = _prosumer_with_meter(session)
        session.add(_reading(meter, at, micro=3_412_500))
        session.commit()
    with sessions() as session:
        reading = session.scalars(select(MeterReading)).one()
        assert reading.reading_timestamp == at
        assert reading.reading_timestamp.tzinfo is UTC
        assert reading.kwh_amount == Decimal("3.4125")
        total = session.scalar(select(MeterReading.kwh_micro))
        assert isinstance(total, int)


def test_sqlite_runs_wal_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    engine.dispose()


def test_an_unmigrated_database_is_refused_with_the_fix(tmp_path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseNotMigrated, match="alembic upgrade head"):
        ensure_migrated(engine)
    engine.dispose()


def test_a_migrated_database_is_accepted(engine) -> None:
    ensure_migrated(engine)


def test_pg_template_is_really_postgres(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        assert "PostgreSQL" in connection.execute(text("SELECT version()")).scalar()
    engine.dispose()
