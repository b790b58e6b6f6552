"""Seed data for bench/certificates.py: devices, minted readings and certificates in bulk.

Rows go in through the driver, not the ORM: PostgreSQL by COPY, SQLite by one
prepared INSERT per chunk of plain tuples (values stored as SQLAlchemy would store
them: naive UTC text for times, text for exact decimals). Through the ORM's
insert path a million certificates and their bundles took over ten minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.db.models import Meter, User

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DEVICE = {
    "technology": "solar_pv",
    "capacity_kw": "100",
    "country": "TH",
    "grid_region": "TH-PEA",
    "commissioning_date": date(2024, 1, 1),
}
CHUNK = 20_000
HOURS = 30 * 24  # certificates spread over the chart's 30 days
STATUSES = ("active",) * 7 + ("retired", "retired", "cancelled")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def bulk_insert(
    session: Session, table: str, columns: tuple[str, ...], rows: Iterable[tuple]
) -> int:
    """Insert plain tuples (in `columns` order) into `table`; how many went in."""
    connection = session.connection().connection.dbapi_connection
    assert connection is not None
    names = ", ".join(columns)
    if session.get_bind().dialect.name == "postgresql":
        count = 0
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    statement = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    cursor = connection.cursor()
    count = 0
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(tuple(_sqlite_value(v) for v in row))
        if len(chunk) == CHUNK:
            cursor.executemany(statement, chunk)
            count += len(chunk)
            chunk = []
    cursor.executemany(statement, chunk)
    cursor.close()
    return count + len(chunk)


def users_and_meters(session: Session, meters: int) -> tuple[list[int], list[int]]:
    """Prosumers (one per ten devices) and devices with complete registry fields."""
    owners = [
        User(
            username=f"bench{index:04d}",
            role="prosumer",
            password_hash="x",
            wallet_address=f"{index:032d}"[:32] + "1" * 12,
        )
        for index in range(max(1, meters // 10))
    ]
    session.add_all(owners)
    session.flush()
    rows = [
        Meter(
            serial=f"BENCH-{index:05d}",
            owner_id=owners[index % len(owners)].id,
            public_key="1" * 32,
            api_key_hash=f"{index:064d}",
            status="active",
            **DEVICE,
        )
        for index in range(meters)
    ]
    session.add_all(rows)
    session.commit()
    return [o.id for o in owners], [m.id for m in rows]


READING_COLUMNS = (
    "meter_id", "user_id", "wallet_address", "kwh_micro", "reading_timestamp",
    "submitted_at", "status", "meter_signature", "minted_at", "attempts",
)  # fmt: skip


def minted_readings(
    owner_of: dict[int, int], per_meter: int, expected: dict[int, int]
) -> Iterator[tuple]:
    """Every device's readings, every 15 minutes, minted; adds each device's mWh to expected."""
    start = NOW - timedelta(minutes=15 * (per_meter + 4))
    minted_at = NOW - timedelta(minutes=30)
    for meter_id, owner in owner_of.items():
        for n in range(per_meter):
            micro = 250_000 + (meter_id * 7919 + n * 104_729) % 200_000
            expected[meter_id] = expected.get(meter_id, 0) + micro
            yield (meter_id, owner, "w", micro, start + timedelta(minutes=15 * n), NOW,
                   "minted", "s", minted_at, 0)  # fmt: skip


BUNDLE_COLUMNS = (
    "id", "meter_id", "producer_id", "hour_start", "readings", "energy_mwh",
    "carried_in_mwh", "wh", "remainder_mwh", "first_id", "last_id", "technology",
    "capacity_kw", "country", "grid_region", "commissioning_date", "created_at",
)  # fmt: skip
CERTIFICATE_COLUMNS = (
    "id", "bundle_id", "first_id", "last_id", "wh", "holder_id", "holder_wallet", "status",
    "attempts", "created_at", "updated_at", "finished_at", "beneficiary", "purpose",
    "period_start", "period_end", "claim_country",
)  # fmt: skip


def bundles(count: int, meter_ids: list[int], owners: list[int]) -> Iterator[tuple]:
    """One 1,000-Wh bundle per certificate, over 30 days of hours."""
    for index in range(count):
        yield (index + 1, meter_ids[index % len(meter_ids)], owners[index % len(owners)],
               NOW - timedelta(hours=1 + index % HOURS), 4, 1_000_000, 0, 1000, 0,
               index * 1000 + 1, index * 1000 + 1000, DEVICE["technology"], "100",
               DEVICE["country"], DEVICE["grid_region"], DEVICE["commissioning_date"],
               NOW)  # fmt: skip


def certificates(count: int, owners: list[int]) -> Iterator[tuple]:
    """Certificate `n` holds bundle `n`: 70 % active, 20 % retired, 10 % cancelled."""
    for index in range(count):
        status = STATUSES[index % len(STATUSES)]
        ended = None if status == "active" else NOW - timedelta(hours=index % HOURS)
        claim: tuple = (None,) * 5
        if status == "retired":
            claim = ("Bench Beneficiary", "bench", date(2026, 1, 1), date(2026, 1, 31), "TH")
        yield (index + 1, index + 1, index * 1000 + 1, index * 1000 + 1000, 1000,
               owners[index % len(owners)], "w" * 32, status, 0, NOW, NOW, ended,
               *claim)  # fmt: skip


def daily_rows(count: int) -> list[tuple]:
    """certificate_daily as issuance keeps it for the seeded certificates."""
    daily: dict[date, int] = {}
    for index in range(count):
        day = (NOW - timedelta(hours=1 + index % HOURS)).date()
        daily[day] = daily.get(day, 0) + 1000
    return [(day, "solar_pv", "TH-PEA", "issued", wh) for day, wh in daily.items()]
