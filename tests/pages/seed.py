"""A small, fixed world for dashboard tests: every role, every reading status.

Times are relative to `now` (tests.factories.NOW, which AppTest pins as the
dashboard's "now"; the browser test passes the real time): alice has 3 minted
readings today, one pending and one failed; bob has one minted and one in review;
events exist for each and for staff only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, MintBatch, TokenMint, User
from core.events import EventType, publish
from tests.conftest import _fresh_sqlite, _pg_url_for
from tests.factories import NOW, make_meter, make_reading, make_user, wallet_for

SIGNATURE = "5" * 87 + "A"
MINT = wallet_for("grx-mint")


# Module-scoped fixtures parametrise over the databases the way `database_url` does.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def shared_database(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A fresh migrated database for a whole module (request.param: sqlite/postgresql),
    made from the session's templates like tests.conftest's per-test ones."""
    if request.param == "sqlite":
        yield _fresh_sqlite(request.getfixturevalue("sqlite_template"), directory)
        return
    yield _pg_url_for(request.getfixturevalue("pg_copies").take())


@dataclass
class Seeded:
    users: dict[str, User]
    reading_ids: dict[str, int]
    batch_id: int


def _reading(
    session: Session, meter: Meter, *, submitted_at: datetime, **columns: Any
) -> MeterReading:
    # tests.factories.make_reading always sets submitted_at=NOW; latency needs it earlier.
    reading = make_reading(session, meter, **columns)
    reading.submitted_at = submitted_at
    session.commit()
    return reading


def seed_dashboard(session: Session, now: datetime = NOW) -> Seeded:
    users = {
        "root": make_user(session, "root", role="admin"),
        "ops": make_user(session, "ops", role="operator"),
        "alice": make_user(session, "alice"),
        "bob": make_user(session, "bob"),
    }
    a1 = make_meter(session, users["alice"], serial="MTR-A1").meter
    a2 = make_meter(session, users["alice"], serial="MTR-A2").meter
    b1 = make_meter(session, users["bob"], serial="MTR-B1").meter
    batch = MintBatch(
        status="confirmed",
        signature=SIGNATURE,
        total_readings=4,
        total_base_units=6_500_000_000,
        created_at=now - timedelta(minutes=25),
        finished_at=now - timedelta(minutes=20),
    )
    session.add(batch)
    session.commit()
    minted_at = now - timedelta(minutes=20)
    ids: dict[str, int] = {}
    for index, minutes in enumerate((60, 45, 30)):
        at = now - timedelta(minutes=minutes)
        reading = _reading(
            session,
            a1,
            kwh="1.5",
            at=at,
            status="minted",
            submitted_at=at + timedelta(seconds=30),
            mint_batch_id=batch.id,
            token_base_units=1_500_000_000,
            mint_tx_signature=SIGNATURE,
            minted_at=minted_at,
        )
        ids[f"alice_minted_{index}"] = reading.id
    ids["bob_minted"] = _reading(
        session,
        b1,
        kwh="2.0",
        at=now - timedelta(minutes=50),
        status="minted",
        submitted_at=now - timedelta(minutes=49),
        mint_batch_id=batch.id,
        token_base_units=2_000_000_000,
        mint_tx_signature=SIGNATURE,
        minted_at=minted_at,
    ).id
    ids["alice_pending"] = _reading(
        session,
        a2,
        kwh="0.5",
        at=now - timedelta(minutes=10),
        submitted_at=now - timedelta(minutes=9),
    ).id
    ids["alice_failed"] = _reading(
        session,
        a1,
        kwh="1.0",
        at=now - timedelta(hours=3),
        status="failed",
        submitted_at=now - timedelta(hours=3),
        attempts=3,
        last_error="blockhash expired 3 times",
    ).id
    ids["bob_review"] = _reading(
        session,
        b1,
        kwh="15.0",
        at=now - timedelta(hours=2),
        status="review",
        submitted_at=now - timedelta(hours=2),
    ).id
    session.add(
        TokenMint(
            address=MINT,
            rpc_url="http://127.0.0.1:9",
            token_program="spl-token",
            decimals=9,
            bootstrap_supply=0,
            created_at=now - timedelta(days=1),
        )
    )
    alice, bob = users["alice"], users["bob"]
    publish(
        session,
        EventType.TOKENS_MINTED,
        {
            "user_id": alice.id,
            "note": "alice-mint",
            "wallet_address": alice.wallet_address,
            "kwh_amount": "1.500000",
            "tokens_minted": 1500000000,
            "reading_ids": [1],
            "transaction_signature": "alice-mint",
        },
        user_id=alice.id,
        at=now - timedelta(minutes=20),
    )
    publish(
        session,
        EventType.TOKENS_MINTED,
        {
            "user_id": bob.id,
            "note": "bob-mint",
            "wallet_address": bob.wallet_address,
            "kwh_amount": "1.500000",
            "tokens_minted": 1500000000,
            "reading_ids": [1],
            "transaction_signature": "bob-mint",
        },
        user_id=bob.id,
        at=now - timedelta(minutes=20),
    )
    publish(
        session,
        EventType.METER_READING_VALIDATION_FAILED,
        {"meter_serial": "MTR-X", "error_code": "kwh_out_of_range", "error_reason": "staff-only"},
        at=now - timedelta(minutes=5),
    )
    session.commit()
    return Seeded(users=users, reading_ids=ids, batch_id=batch.id)


def seed_history(session: Session, seeded: Seeded, now: datetime, *, hours: int = 48) -> int:
    """Minted readings every 15 minutes for the past `hours` on every seeded meter, in
    hourly batches: enough for charts worth looking at. Returns how many. Commits."""
    meters = session.scalars(select(Meter).order_by(Meter.id)).all()
    owners = {user.id: user for user in seeded.users.values()}
    end = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    count = 0
    for slot in reversed(range(hours * 4)):  # oldest first: ids grow with time, as in life
        at = end - timedelta(minutes=15 * (slot + 1) - 7)
        batch = MintBatch(status="confirmed", signature=f"{slot + 2:0>5}" + "B" * 83,
                          created_at=at + timedelta(seconds=30),
                          finished_at=at + timedelta(seconds=45))  # fmt: skip
        session.add(batch)
        session.flush()
        units = 0
        for meter in meters:
            # A solar-ish day: more around noon UTC, a little at night.
            kwh_micro = 100_000 + 150_000 * max(0, 7 - abs(at.hour - 12)) + 7_000 * meter.id
            owner = owners[meter.owner_id]
            session.add(MeterReading(
                meter_id=meter.id, user_id=owner.id, wallet_address=owner.wallet_address,
                kwh_micro=kwh_micro, reading_timestamp=at,
                submitted_at=at + timedelta(seconds=20), status="minted",
                meter_signature="sig", mint_batch_id=batch.id,
                token_base_units=kwh_micro * 1000, ratio_applied=1,
                mint_tx_signature=batch.signature, minted_at=batch.finished_at,
            ))  # fmt: skip
            units += kwh_micro * 1000
            count += 1
        batch.total_readings, batch.total_base_units = len(meters), units
    session.commit()
    return count
