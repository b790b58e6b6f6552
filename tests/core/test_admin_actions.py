"""Admin actions on readings: mint requests, retries and review decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Event, Meter, MeterReading, MintRequest, ReadingStatus, User
from core.errors import Conflict, InvalidInput, NotFound
from core.minting.requests import (
    AlreadyMinted,
    request_mint_now,
    request_reading_mint,
    retry_failed_readings,
)
from core.review import approve_reading, reject_reading
from core.wallets import InvalidWallet, is_valid_wallet, parse_wallet

WALLET = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
START = datetime(2026, 11, 1, tzinfo=UTC)


def _seed(session: Session, statuses: list[str]) -> tuple[User, list[int]]:
    admin = User(username="root", role="admin", password_hash="x")
    owner = User(username="p1", role="prosumer", password_hash="x", wallet_address=WALLET)
    session.add_all([admin, owner])
    session.flush()
    meter = Meter(serial="M-1", owner_id=owner.id, public_key="k", api_key_hash="h" * 64)
    session.add(meter)
    session.flush()
    readings = [
        MeterReading(
            meter_id=meter.id,
            user_id=owner.id,
            wallet_address=WALLET,
            kwh_micro=1_500_000,
            reading_timestamp=START + timedelta(minutes=15 * i),
            meter_signature="s",
            status=status,
            attempts=3 if status == "failed" else 0,
            last_error="boom" if status == "failed" else None,
        )
        for i, status in enumerate(statuses)
    ]
    session.add_all(readings)
    session.commit()
    return admin, [r.id for r in readings]


def _events(session: Session) -> list[Event]:
    return list(session.scalars(select(Event).order_by(Event.id)))


@pytest.mark.parametrize("status", ["review", "failed", "pending"])
def test_request_reading_mint_queues_it_and_says_so(
    sessions: sessionmaker[Session], status: str
) -> None:
    with sessions() as session:
        admin, [reading_id] = _seed(session, [status])
        reading = request_reading_mint(session, reading_id, admin)
        assert reading.status == ReadingStatus.PENDING
        assert reading.mint_requested_by == admin.id and reading.mint_requested_at is not None
        if status == "failed":
            assert (reading.attempts, reading.last_error) == (0, None)
        [event] = _events(session)
        assert event.type == "mint_requested"
        assert event.payload == {"reading_ids": [reading_id], "from_status": status, "by": "root"}


@pytest.mark.parametrize("status", ["minting", "minted"])
def test_a_reading_is_never_queued_twice(sessions: sessionmaker[Session], status: str) -> None:
    with sessions() as session:
        admin, [reading_id] = _seed(session, [status])
        with pytest.raises(AlreadyMinted) as caught:
            request_reading_mint(session, reading_id, admin)
        assert caught.value.code == "already_minted"
        assert _events(session) == []


def test_rejected_and_unknown_readings_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        admin, [reading_id] = _seed(session, ["rejected"])
        with pytest.raises(Conflict):
            request_reading_mint(session, reading_id, admin)
        with pytest.raises(NotFound):
            request_reading_mint(session, 10_000, admin)


def test_mint_now_covers_every_reading_so_far(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        admin, ids = _seed(session, ["pending", "pending", "minted"])
        request = request_mint_now(session, admin)
        assert request.upto_reading_id == max(ids)
        assert session.scalars(select(MintRequest)).one().requested_by == admin.id


def test_retry_failed_resets_only_failed_readings(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        admin, ids = _seed(session, ["failed", "failed", "minted", "pending"])
        assert retry_failed_readings(session, admin, [ids[0], ids[2]]) == 1
        assert retry_failed_readings(session, admin) == 1
        assert retry_failed_readings(session, admin) == 0
        statuses = [session.get(MeterReading, i).status for i in ids]
        assert statuses == ["pending", "pending", "minted", "pending"]
        assert session.get(MeterReading, ids[0]).attempts == 0
        assert [e.payload["reading_ids"] for e in _events(session)] == [[ids[0]], [ids[1]]]


def test_review_approve_and_reject(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        admin, ids = _seed(session, ["review", "review", "pending"])
        assert approve_reading(session, ids[0], admin, "checked").status == "pending"
        with pytest.raises(InvalidInput):
            reject_reading(session, ids[1], admin, "  ")
        rejected = reject_reading(session, ids[1], admin, "meter fault")
        assert (rejected.status, rejected.review_note) == ("rejected", "meter fault")
        with pytest.raises(Conflict):
            approve_reading(session, ids[2], admin)
        events = _events(session)
        assert [(e.type, e.payload["decision"]) for e in events] == [
            ("reading_reviewed", "approved"),
            ("reading_reviewed", "rejected"),
        ]
        owner_id = session.get(MeterReading, ids[0]).user_id
        assert {e.user_id for e in events} == {owner_id}  # the prosumer sees the outcome


@pytest.mark.parametrize(
    "address",
    ["", "   ", "0OIl-not-base58", "3vQB7B6MrGQZaxCuFg4oh", WALLET + "1", "1" * 44],
)
def test_wallets_must_be_base58_of_32_bytes(address: str) -> None:
    with pytest.raises(InvalidWallet) as caught:
        parse_wallet(address)
    assert caught.value.field == "wallet_address"
    assert not is_valid_wallet(address)


def test_a_real_address_is_accepted_and_stripped() -> None:
    assert parse_wallet(f" {WALLET} ") == WALLET
    assert parse_wallet("11111111111111111111111111111111") == "11111111111111111111111111111111"
