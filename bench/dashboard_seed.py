"""Bulk-seed a migrated database with a fleet's history for the dashboard benchmark.

200 meters of 20 prosumers, each reporting every 15 minutes up to now, so "today",
"last hour" and "last 7 days" all hold data: 1,000,000 readings is 52 days. Almost
all are minted in batches of 50 (one mint_batches row and two events each); the
newest are pending or minting, and a few are failed, in review or rejected.

Rows go in through the driver: executemany on SQLite, COPY on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import base58
from sqlalchemy import Engine, text

from core.auth import hash_password
from core.rollups.rebuild import rebuild_rollups

PROSUMERS = 20
METERS = 200
INTERVAL = timedelta(minutes=15)
BATCH = 50
PASSWORD = "bench-password"
READING_COLUMNS = (
    "id", "meter_id", "user_id", "wallet_address", "kwh_micro", "reading_timestamp",
    "submitted_at", "status", "meter_signature", "mint_batch_id", "token_base_units",
    "ratio_applied", "mint_tx_signature", "minted_at", "attempts", "last_error",
)  # fmt: skip
BATCH_COLUMNS = (
    "id", "status", "signature", "attempt", "total_readings", "total_base_units", "created_at",
    "signed_at", "finished_at",
)  # fmt: skip
EVENT_COLUMNS = ("type", "user_id", "payload", "created_at")
MINTED_EPOCH = {"postgresql": "CAST(floor(date_part('epoch', minted_at)) AS BIGINT)"}


@dataclass(frozen=True)
class SeedInfo:
    readings: int
    batches: int
    admin: str = "root"
    operator: str = "ops"
    prosumer: str = "p00"


def _address(name: str) -> str:
    return base58.b58encode(hashlib.sha256(name.encode()).digest()).decode()


def _signature(index: int) -> str:
    return base58.b58encode(hashlib.sha512(f"tx{index}".encode()).digest()).decode()


def _rows(total: int, now: datetime) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """("reading" | "batch" | "event", row) in id order of readings; deterministic."""
    rng = random.Random(42)
    per_meter = -(-total // METERS)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
    batch: list[list[Any]] = []
    batch_id = 0
    reading_id = 0
    for step in range(per_meter):
        at = end - (per_meter - 1 - step) * INTERVAL
        for meter in range(METERS):
            if reading_id == total:
                break
            reading_id += 1
            owner = meter % PROSUMERS
            submitted = at + timedelta(seconds=1 + meter % 30, microseconds=rng.randrange(10**6))
            kwh_micro = rng.randrange(10_000, 5_000_000)
            age = (now - submitted).total_seconds()
            status = "pending" if age < 60 else "minting" if age < 180 else "minted"
            roll = rng.random()
            if status == "minted" and roll < 0.002:
                status = ("failed", "review", "rejected", "failed")[int(roll * 2000)]
            failed = status == "failed"
            row = [reading_id, meter + 1, owner + 3, _address(f"wallet{owner}"), kwh_micro, at,
                   submitted, status, "sig", None, None, None, None, None, 3 if failed else 0,
                   "blockhash expired after 3 attempts" if failed else None]  # fmt: skip
            if status != "minted":
                yield "reading", tuple(row)
                continue
            batch.append(row)
            if len(batch) == BATCH:
                batch_id += 1
                yield from _close_batch(batch, batch_id, rng)
                batch = []
    for row in batch:  # too few for a batch: still waiting
        row[7] = "pending"
        yield "reading", tuple(row)


def _close_batch(rows: list[list[Any]], batch_id: int, rng: random.Random) -> Iterator[Any]:
    created = max(row[6] for row in rows) + timedelta(seconds=1)
    minted_at = created + timedelta(seconds=rng.randrange(4, 40))
    signature = _signature(batch_id)
    units = 0
    for row in rows:
        # mint_batch_id, token_base_units (ratio 1, 9 decimals), ratio, signature, minted_at
        row[9:14] = [batch_id, row[4] * 1000, "1", signature, minted_at]
        units += row[10]
        yield "reading", tuple(row)
    yield "batch", (batch_id, "confirmed", signature, 1, len(rows), units, created, created,
                    minted_at)  # fmt: skip
    completed = {
        "batch_id": batch_id,
        "total_readings": len(rows),
        "transaction_signature": signature,
    }
    yield "event", ("batch_minting_completed", None, json.dumps(completed), minted_at)
    owner = rows[0][2]
    minted = {"batch_id": batch_id, "user_id": owner}
    yield "event", ("tokens_minted", owner, json.dumps(minted), minted_at)


def seed(engine: Engine, total: int, now: datetime | None = None) -> SeedInfo:
    """Fill an empty, migrated database; returns who can log in."""
    now = now or datetime.now(UTC)
    digest = hash_password(PASSWORD)
    users = [(1, "root", "admin", None), (2, "ops", "operator", None)] + [
        (3 + i, f"p{i:02d}", "prosumer", _address(f"wallet{i}")) for i in range(PROSUMERS)
    ]
    with engine.begin() as connection:
        for ident, name, role, wallet in users:
            connection.execute(
                text("INSERT INTO users (id, username, role, password_hash, wallet_address, "
                     "disabled, created_at) VALUES (:i, :n, :r, :h, :w, false, :t)"),
                {"i": ident, "n": name, "r": role, "h": digest, "w": wallet, "t": now},
            )  # fmt: skip
        connection.execute(
            text("INSERT INTO meters (id, serial, owner_id, public_key, api_key_hash, status, "
                 "created_at) VALUES (:i, :s, :o, :k, :h, 'active', :t)"),
            [{"i": m + 1, "s": f"MTR-{m:04d}", "o": 3 + m % PROSUMERS, "k": _address(f"m{m}"),
              "h": hashlib.sha256(f"key{m}".encode()).hexdigest(), "t": now}
             for m in range(METERS)],
        )  # fmt: skip
        connection.execute(
            text("INSERT INTO token_mints (address, rpc_url, token_program, decimals, "
                 "bootstrap_supply, created_at) "
                 "VALUES (:a, 'http://127.0.0.1:9', 'spl-token', 9, 0, :t)"),
            {"a": _address("grx-mint"), "t": now},
        )  # fmt: skip
    counts = (_copy if engine.dialect.name == "postgresql" else _executemany)(engine, total, now)
    if engine.dialect.name == "postgresql":  # COPY ran with triggers off: count as they do
        epoch = MINTED_EPOCH[engine.dialect.name]
        with engine.begin() as connection:
            connection.execute(
                text(f"INSERT INTO minted_buckets (bucket, readings, base_units) "
                     f"SELECT {epoch} / 900 * 900 AS b, count(*), sum(token_base_units) "
                     f"FROM meter_readings WHERE minted_at IS NOT NULL GROUP BY b")
            )  # fmt: skip
            rebuild_rollups(connection)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")  # statistics as a running deployment has them
        connection.commit()
    return SeedInfo(readings=counts["reading"], batches=counts["batch"])


def _sqlite_value(value: Any) -> Any:
    # The stored form of core.db.types.UtcDateTime on SQLite: naive UTC text.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _executemany(engine: Engine, total: int, now: datetime) -> dict[str, int]:
    tables = {
        "reading": ("meter_readings", READING_COLUMNS),
        "batch": ("mint_batches", BATCH_COLUMNS),
        "event": ("events", EVENT_COLUMNS),
    }
    buffers: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in tables}
    counts = dict.fromkeys(tables, 0)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")  # batches are inserted after their readings
        cursor.execute("BEGIN")

        def flush(kind: str) -> None:
            table, columns = tables[kind]
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", buffers[kind]
            )
            buffers[kind].clear()

        for kind, row in _rows(total, now):
            buffers[kind].append(tuple(_sqlite_value(value) for value in row))
            counts[kind] += 1
            if len(buffers[kind]) >= 20_000:
                flush(kind)
        for kind in tables:
            flush(kind)
        cursor.execute("COMMIT")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    return counts


def _copy(engine: Engine, total: int, now: datetime) -> dict[str, int]:
    counts = {"reading": 0, "batch": 0, "event": 0}
    events: list[tuple[Any, ...]] = []
    batches: list[tuple[Any, ...]] = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET session_replication_role = replica")  # FKs: batches come later
        with cursor.copy(f"COPY meter_readings ({', '.join(READING_COLUMNS)}) FROM STDIN") as copy:
            for kind, row in _rows(total, now):
                counts[kind] += 1
                if kind == "reading":
                    copy.write_row(row)
                else:
                    (batches if kind == "batch" else events).append(row)
        with cursor.copy(f"COPY mint_batches ({', '.join(BATCH_COLUMNS)}) FROM STDIN") as copy:
            for row in batches:
                copy.write_row(row)
        with cursor.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in events:
                copy.write_row(row)
        cursor.execute("SET session_replication_role = DEFAULT")
        # Explicit ids: move the sequences past them.
        for table in ("users", "meters", "meter_readings", "mint_batches"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")  # fmt: skip
        raw.commit()
    finally:
        raw.close()
    return counts


def seed_fleet(engine: Engine, meters: int, now: datetime | None = None) -> int:
    """`meters` more meters with no readings, each of its own prosumer (`fpNNNNNN`), as
    bench/fleet.py registers them: bulk inserts of 10,000 rows. Deterministic mix of
    states by index: 2 % suspended, 5 % never seen, 5 % silent, 10 % late, the rest
    reporting; 1 % flagged and 1 % with two refused submissions in the last day; 90 %
    held by gateways of 1,000. Returns how many meters the database holds."""
    from sqlalchemy import func, insert, select, update

    from core.db.models import Event, Gateway, GatewayMeter, Meter, User

    now = now or datetime.now(UTC)
    digest = hash_password(PASSWORD)

    def seen(m: int) -> datetime | None:
        kind = m % 20
        if kind == 1:
            return None  # registered, never reported
        if kind == 2:
            minutes = 180 + m % 3000  # silent
        elif kind == 3:
            minutes = 31 + m % 88  # late
        else:
            minutes = (m * 7) % 29  # reporting
        return now - timedelta(minutes=minutes, seconds=m % 60)

    def chunked(table: Any, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 10_000):
            connection.execute(insert(table), rows[start : start + 10_000])

    with engine.begin() as connection:
        # The history meters report up to now, like the rest of the fleet.
        connection.execute(update(Meter).values(last_seen_at=now - timedelta(minutes=1)))
        chunked(User, [{"username": f"fp{m:06d}", "role": "prosumer", "password_hash": digest,
                        "wallet_address": _address(f"fleet-wallet{m}"), "disabled": False,
                        "created_at": now} for m in range(meters)])  # fmt: skip
        owners = dict(connection.execute(
            select(User.username, User.id).where(User.username.like("fp%"))
        ).all())  # fmt: skip
        chunked(Meter, [{"serial": f"FLEET-{m:06d}", "owner_id": owners[f"fp{m:06d}"],
                         "public_key": _address(f"fleet-meter{m}"),
                         "api_key_hash": hashlib.sha256(f"fleet-key{m}".encode()).hexdigest(),
                         "status": "suspended" if m % 50 == 0 else "active",
                         "created_at": now, "last_seen_at": seen(m)}
                        for m in range(meters)])  # fmt: skip
        ids = dict(connection.execute(
            select(Meter.serial, Meter.id).where(Meter.serial.like("FLEET-%"))
        ).all())  # fmt: skip
        through = meters * 9 // 10
        for gateway in range(-(-through // 1000)):
            gateway_id = connection.execute(
                insert(Gateway).returning(Gateway.id),
                {"name": f"FLEET-GW-{gateway:04d}", "status": "active", "created_by": "root",
                 "api_key_hash": hashlib.sha256(f"fleet-gw{gateway}".encode()).hexdigest(),
                 "created_at": now},
            ).scalar_one()  # fmt: skip
            share = range(gateway * 1000, min(through, gateway * 1000 + 1000))
            chunked(GatewayMeter, [{"gateway_id": gateway_id, "meter_id": ids[f"FLEET-{m:06d}"]}
                                   for m in share])  # fmt: skip
        events = [{"type": "meter_flagged", "user_id": None, "created_at": now - timedelta(hours=1),
                   "payload": {"meter_serial": f"FLEET-{m:06d}", "flag": "missing_intervals"}}
                  for m in range(7, meters, 100)]  # fmt: skip
        events += [{"type": "meter_reading_validation_failed", "user_id": None,
                    "created_at": now - timedelta(minutes=10 + k),
                    "payload": {"meter_serial": f"FLEET-{m:06d}", "error_code": "kwh_out_of_range"}}
                   for m in range(9, meters, 100) for k in range(2)]  # fmt: skip
        chunked(Event, events)
        total = connection.scalar(select(func.count()).select_from(Meter))
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    return int(total or 0)
