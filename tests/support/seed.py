"""Bulk seeding for minting tests and benchmarks: prosumers, meters and pending readings.

Rows go in with executemany, not one use case call each, so a test can start
from thousands of readings in a fraction of a second. Signatures are placeholders:
the minting side never re-verifies them (ingest did).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from solders.keypair import Keypair
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, User

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def wallet_address(index: int, namespace: str = "seed") -> str:
    seed = hashlib.sha256(f"{namespace}:{index}".encode()).digest()
    return str(Keypair.from_seed(seed).pubkey())


@dataclass(frozen=True)
class Producer:
    user_id: int
    meter_id: int
    wallet: str


def seed_producers(session: Session, count: int, *, namespace: str = "seed") -> list[Producer]:
    """`count` prosumers with a wallet and one meter each. Commits."""
    session.execute(
        insert(User),
        [
            {
                "username": f"{namespace}-p{i}",
                "role": "prosumer",
                "password_hash": "-",
                "wallet_address": wallet_address(i, namespace),
                "disabled": False,
                "created_at": T0,
            }
            for i in range(count)
        ],
    )
    users = session.execute(
        select(User.id, User.wallet_address)
        .where(User.username.like(f"{namespace}-p%"))
        .order_by(User.id)
    ).all()
    session.execute(
        insert(Meter),
        [
            {
                "serial": f"{namespace}-m{user_id}",
                "owner_id": user_id,
                "public_key": "-",
                "api_key_hash": hashlib.sha256(f"{namespace}{user_id}".encode()).hexdigest(),
                "status": "active",
                "created_at": T0,
            }
            for user_id, _ in users
        ],
    )
    meters = dict(
        session.execute(
            select(Meter.owner_id, Meter.id).where(Meter.serial.like(f"{namespace}-m%"))
        ).all()
    )
    session.commit()
    return [Producer(uid, meters[uid], str(wallet)) for uid, wallet in users]


def seed_readings(
    session: Session,
    producers: list[Producer],
    per_producer: int,
    *,
    kwh_micro: int | None = None,
    start: datetime = T0,
    status: str = "pending",
) -> int:
    """`per_producer` readings each, 15 minutes apart, varied exact amounts. Commits."""
    rows = []
    for p_index, producer in enumerate(producers):
        for r_index in range(per_producer):
            micro = kwh_micro or 1 + (p_index * 7_919 + r_index * 104_729) % 25_000_000
            rows.append(
                {
                    "meter_id": producer.meter_id,
                    "user_id": producer.user_id,
                    "wallet_address": producer.wallet,
                    "kwh_micro": micro,
                    "reading_timestamp": start + timedelta(minutes=15 * r_index),
                    "submitted_at": start + timedelta(minutes=15 * r_index, seconds=3),
                    "status": status,
                    "meter_signature": "-",
                    "attempts": 0,
                }
            )
    for chunk in range(0, len(rows), 5000):
        session.execute(insert(MeterReading), rows[chunk : chunk + 5000])
    session.commit()
    return len(rows)
