"""Every field hold_wallets, signing with a signer, and operation settlement write.

Operations (token accounts, SetAuthority) carry no readings, so their rows are
inserted here directly; expected values are written out, never recomputed by
core.minting.states. Amounts: 1.5 kWh × 2.5 × 10^9 = 3,750,000,000 base units.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Event, MeterReading, MintBatch
from core.minting import states
from core.minting.claim import claim_pending
from tests.core.minting.test_state_fields import NOW, UNITS, config
from tests.support.seed import seed_producers, seed_readings

UNTIL = NOW + timedelta(seconds=90)


def events(session: Session) -> list[tuple[str, int | None, dict, object]]:
    rows = session.scalars(select(Event).order_by(Event.id))
    return [(e.type, e.user_id, e.payload, e.created_at) for e in rows]


def three_and_one(session: Session):
    """Batch A holds three wallets' one reading each; batch B the fourth wallet's."""
    producers = seed_producers(session, 4)
    seed_readings(session, producers, 1, kwh_micro=1_500_000)
    first = claim_pending(session, config(), now=NOW, wallets_per_transaction=3)
    a, b = first[0].id, first[1].id
    return [p.wallet for p in producers], a, b


def readings(session: Session) -> dict[int, tuple]:
    session.expire_all()
    return {
        r.id: (r.status, r.mint_batch_id, r.next_attempt_at, r.last_error, r.attempts)
        for r in session.scalars(select(MeterReading).order_by(MeterReading.id))
    }


def test_holding_two_of_three_wallets_writes_every_field(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        wallets, a, b = three_and_one(session)
        before = readings(session)
        ids = sorted(before)
        held = states.hold_wallets(
            session,
            a,
            [wallets[0], wallets[1], wallets[3]],
            reason="no account",
            until=UNTIL,
            now=NOW,
        )
        assert held == ids[:2]  # wallet 3's reading is in batch B: not this batch's to hold
        after = readings(session)
        assert after[ids[0]] == after[ids[1]] == ("pending", None, UNTIL, "no account", 0)
        assert after[ids[2]] == ("minting", a, None, None, 0)
        assert after[ids[3]] == ("minting", b, None, None, 0)
        row = session.get(MintBatch, a)
        assert (row.status, row.total_readings, row.total_base_units, row.mint_count) == (
            "planned",
            1,
            UNITS,
            1,
        )
        assert (row.error, row.finished_at) == (None, None)
        other = session.get(MintBatch, b)
        assert (other.status, other.total_readings, other.total_base_units) == ("planned", 1, UNITS)
        payload = {"batch_id": a, "reading_ids": ids[:2], "error": "no account", "will_retry": True}
        assert events(session) == [("mint_failed", None, payload, NOW)]


def test_holding_the_last_reading_expires_the_batch(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        wallets, a, b = three_and_one(session)
        ids = sorted(readings(session))
        assert states.hold_wallets(session, b, [wallets[3]], reason="r", until=UNTIL, now=NOW) == [
            ids[3]
        ]
        row = session.get(MintBatch, b)
        assert (row.status, row.error, row.finished_at, row.total_readings) == (
            "expired",
            "r",
            NOW,
            0,
        )
        assert row.total_base_units == 0 and row.mint_count == 0
        assert session.get(MintBatch, a).status == "planned"


def test_a_reading_no_longer_minting_is_not_held(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        wallets, a, _ = three_and_one(session)
        ids = sorted(readings(session))
        session.execute(
            update(MeterReading).where(MeterReading.id == ids[0]).values(status="minted")
        )
        session.commit()
        assert states.hold_wallets(session, a, wallets[:2], reason="r", until=UNTIL, now=NOW) == [
            ids[1]
        ]
        assert readings(session)[ids[0]] == ("minted", a, None, None, 0)


def test_a_signed_batch_is_not_held(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        wallets, _, b = three_and_one(session)
        item = states.SignedBatch(
            b, "sig-b", b"raw", "hash", 9, signer="file", signer_key_version=3
        )
        assert states.mark_signed_many(session, [item], now=NOW) == {b}
        row = session.get(MintBatch, b)
        assert (row.signer, row.signer_key_version, row.attempt) == ("file", 3, 1)
        assert states.hold_wallets(session, b, [wallets[3]], reason="r", until=UNTIL, now=NOW) == []
        session.expire_all()
        assert session.get(MintBatch, b).status == "signed"
        assert events(session) == []


def operation(session: Session, kind: str, signature: str, **over) -> int:
    values = {"kind": kind, "status": "signed", "signature": signature, "attempt": 1, **over}
    batch = MintBatch(**values)
    session.add(batch)
    session.commit()
    return batch.id


def settled(session: Session, batch_id: int) -> tuple:
    session.expire_all()
    row = session.get(MintBatch, batch_id)
    return (row.status, row.slot, row.error, row.finished_at)


def test_a_set_authority_that_lands_tells_who_holds_the_mint(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        payload = {"old_authority": "OldKey", "new_authority": "NewKey"}
        moved = operation(
            session,
            "set_authority",
            "sig-auth",
            payload=payload,
            signer="file",
            signer_key_version=2,
        )
        other = operation(session, "token_accounts", "sig-ata")
        assert states.mark_operation_settled(
            session, moved, "confirmed", slot=77, error=None, now=NOW
        )
        assert settled(session, moved) == ("confirmed", 77, None, NOW)
        assert settled(session, other) == ("signed", None, None, None)
        expected = {
            "batch_id": moved,
            "old_authority": "OldKey",
            "new_authority": "NewKey",
            "signer": "file",
            "signer_key_version": 2,
            "transaction_signature": "sig-auth",
        }
        assert events(session) == [("mint_authority_changed", None, expected, NOW)]
        # Settled once: a second outcome is refused and writes nothing.
        assert not states.mark_operation_settled(
            session, moved, "failed", slot=78, error="late", now=UNTIL
        )
        assert settled(session, moved) == ("confirmed", 77, None, NOW)
        assert len(events(session)) == 1


def test_operations_that_fail_or_are_not_authority_moves_tell_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        accounts = operation(session, "token_accounts", "sig-1")
        authority = operation(session, "set_authority", "sig-2", payload={"new_authority": "K"})
        described = operation(session, "lookup_table", "sig-3")
        assert states.mark_operation_settled(
            session, accounts, "confirmed", slot=5, error=None, now=NOW
        )
        assert states.mark_operation_settled(
            session, authority, "failed", slot=6, error=None, now=NOW
        )
        assert states.mark_operation_settled(
            session, described, "failed", slot=None, error="custom program error: 0x1", now=UNTIL
        )
        assert settled(session, accounts) == ("confirmed", 5, None, NOW)
        assert settled(session, authority) == ("failed", 6, "failed on chain", NOW)
        assert settled(session, described) == ("failed", None, "custom program error: 0x1", UNTIL)
        assert events(session) == []


def test_an_operation_settles_only_as_confirmed_or_failed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        batch = operation(session, "token_accounts", "sig-x")
        with pytest.raises(
            ValueError, match=r"^an operation settles as confirmed or failed, not expired$"
        ):
            states.mark_operation_settled(session, batch, "expired", slot=1, error=None, now=NOW)
        with pytest.raises(ValueError):
            states.mark_operation_settled(session, batch, "bogus", slot=1, error=None, now=NOW)
        planned = operation(session, "token_accounts", "sig-y", status="planned")
        assert not states.mark_operation_settled(
            session, planned, "confirmed", slot=1, error=None, now=NOW
        )
        assert settled(session, planned) == ("planned", None, None, None)
        assert settled(session, batch) == ("signed", None, None, None)
        assert not states.mark_operation_settled(
            session, 10**9, "confirmed", slot=1, error=None, now=NOW
        )
