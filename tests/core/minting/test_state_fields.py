"""Every field each batch transition writes, and every field it must leave alone.

Two batches are always open side by side (one wallet each), so a transition
that forgets its `WHERE id = ...` or `mint_batch_id = ...` moves the other
batch and fails here. Expected amounts come from integer arithmetic on the
seeded readings (1.5 kWh × 2.5 × 10^9 = 3,750,000,000 base units each).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.config import TokenizationConfig
from core.db.models import Event, MeterReading, MintBatch, MintTotal
from core.minting import states
from core.minting.claim import claim_pending
from tests.support.seed import T0, Producer, seed_producers, seed_readings

NOW = T0 + timedelta(days=2)
UNITS = 1_500_000 * 2_500_000_000 * 10**9 // 10**15  # 1.5 kWh × 2.5 at 9 decimals
assert UNITS == 3_750_000_000


def config(**changes) -> TokenizationConfig:
    base = {"kwh_to_token_ratio": "2.5", "max_retries": 2, "retry_base_secs": 10}
    return TokenizationConfig.model_validate(
        {**TokenizationConfig().model_dump(), **base, **changes}
    )


def two_batches(session: Session) -> tuple[list[Producer], int, int]:
    """Two producers with two 1.5 kWh readings each, claimed into one batch per wallet."""
    producers = seed_producers(session, 2)
    seed_readings(session, producers, 2, kwh_micro=1_500_000)
    first, second = claim_pending(session, config(), now=NOW, wallets_per_transaction=1)
    return producers, first.id, second.id


def sign(session: Session, batch_id: int, signature: str, height: int = 500) -> set[int]:
    item = states.SignedBatch(batch_id, signature, f"raw-{signature}".encode(), "hash", height)
    return states.mark_signed_many(session, [item], now=NOW)


def batch_row(session: Session, batch_id: int) -> dict[str, object]:
    session.expire_all()
    batch = session.get(MintBatch, batch_id)
    assert batch is not None
    return {
        name: getattr(batch, name)
        for name in (
            "status",
            "signature",
            "raw_tx",
            "blockhash",
            "last_valid_block_height",
            "attempt",
            "error",
            "slot",
            "signed_at",
            "finished_at",
        )
    }


def reading_rows(session: Session, batch_id: int | None = None, ids: list[int] | None = None):
    session.expire_all()
    query = select(MeterReading).order_by(MeterReading.id)
    if ids is not None:
        query = query.where(MeterReading.id.in_(ids))
    else:
        query = query.where(MeterReading.mint_batch_id == batch_id)
    return [
        {
            "id": r.id,
            "status": r.status,
            "mint_batch_id": r.mint_batch_id,
            "token_base_units": r.token_base_units,
            "ratio_applied": r.ratio_applied,
            "mint_tx_signature": r.mint_tx_signature,
            "minted_at": r.minted_at,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at,
            "last_error": r.last_error,
        }
        for r in session.scalars(query)
    ]


def ids_of(session: Session, batch_id: int) -> list[int]:
    return [r["id"] for r in reading_rows(session, batch_id)]


def minting(reading_id: int, batch_id: int, **changes) -> dict[str, object]:
    """A claimed reading as claim leaves it, with `changes` applied."""
    row = {
        "id": reading_id,
        "status": "minting",
        "mint_batch_id": batch_id,
        "token_base_units": UNITS,
        "ratio_applied": Decimal("2.5"),
        "mint_tx_signature": None,
        "minted_at": None,
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": None,
    }
    return {**row, **changes}


def planned() -> dict[str, object]:
    return {
        "status": "planned",
        "signature": None,
        "raw_tx": None,
        "blockhash": None,
        "last_valid_block_height": None,
        "attempt": 0,
        "error": None,
        "slot": None,
        "signed_at": None,
        "finished_at": None,
    }


def signed(signature: str, height: int = 500) -> dict[str, object]:
    return {
        **planned(),
        "status": "signed",
        "signature": signature,
        "raw_tx": f"raw-{signature}".encode(),
        "blockhash": "hash",
        "last_valid_block_height": height,
        "attempt": 1,
        "signed_at": NOW,
    }


def events(session: Session) -> list[tuple[str, int | None, dict, object]]:
    rows = session.scalars(select(Event).order_by(Event.id))
    return [(e.type, e.user_id, e.payload, e.created_at) for e in rows]


def test_signing_writes_the_transaction_and_nothing_else(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _, a, b = two_batches(session)
        a_ids, b_ids = ids_of(session, a), ids_of(session, b)
        assert sign(session, a, "sig-a", height=812) == {a}
        assert batch_row(session, a) == signed("sig-a", height=812)
        assert batch_row(session, b) == planned()
        assert reading_rows(session, a) == [minting(i, a) for i in a_ids]
        assert reading_rows(session, b) == [minting(i, b) for i in b_ids]
        # Signing again is refused (the batch is no longer planned) and changes nothing.
        assert sign(session, a, "sig-a2") == set()
        assert batch_row(session, a) == signed("sig-a", height=812)
        assert events(session) == []


def test_release_gives_back_only_its_own_readings(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _, a, b = two_batches(session)
        a_ids, b_ids = ids_of(session, a), ids_of(session, b)
        assert states.release_planned(session, a, reason="released: test", now=NOW) is True
        assert batch_row(session, a) == {
            **planned(),
            "status": "expired",
            "error": "released: test",
            "finished_at": NOW,
        }
        assert reading_rows(session, ids=a_ids) == [
            minting(i, None, status="pending") for i in a_ids
        ]
        assert batch_row(session, b) == planned()
        assert reading_rows(session, b) == [minting(i, b) for i in b_ids]
        assert states.release_planned(session, a, reason="again", now=NOW) is False
        sign(session, b, "sig-b")
        assert states.release_planned(session, b, reason="late", now=NOW) is False
        assert batch_row(session, b) == signed("sig-b")
        assert events(session) == []


def test_confirm_writes_every_field_and_exact_events(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        producers, a, b = two_batches(session)
        a_ids, b_ids = ids_of(session, a), ids_of(session, b)
        sign(session, a, "sig-a")
        sign(session, b, "sig-b")
        # Left over from an earlier failed try: a success must clear both.
        session.execute(
            update(MeterReading)
            .where(MeterReading.id.in_(a_ids))
            .values(last_error="Custom(1)", next_attempt_at=NOW - timedelta(minutes=1), attempts=1)
        )
        session.commit()
        assert states.mark_confirmed(session, a, slot=77, now=NOW) is True
        assert batch_row(session, a) == {
            **signed("sig-a"),
            "status": "confirmed",
            "slot": 77,
            "finished_at": NOW,
        }
        assert reading_rows(session, a) == [
            minting(i, a, status="minted", mint_tx_signature="sig-a", minted_at=NOW, attempts=1)
            for i in a_ids
        ]
        assert batch_row(session, b) == signed("sig-b")
        assert reading_rows(session, b) == [minting(i, b) for i in b_ids]
        owner = producers[0]
        assert events(session) == [
            (
                "tokens_minted",
                owner.user_id,
                {
                    "reading_ids": a_ids,
                    "user_id": owner.user_id,
                    "wallet_address": owner.wallet,
                    "kwh_amount": "3.000000",
                    "tokens_minted": 2 * UNITS,
                    "transaction_signature": "sig-a",
                    "batch_id": a,
                },
                NOW,
            ),
            (
                "batch_minting_completed",
                None,
                {
                    "batch_id": a,
                    "total_readings": 2,
                    "successful_mints": 2,
                    "failed_mints": 0,
                    "transaction_signature": "sig-a",
                },
                NOW,
            ),
        ]
        assert states.mark_confirmed(session, a, slot=78, now=NOW + timedelta(seconds=1)) is False
        assert batch_row(session, a)["slot"] == 77 and len(events(session)) == 2


def test_confirm_of_a_batch_with_two_wallets_writes_one_event_each(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 2)
        seed_readings(session, producers, 1, kwh_micro=1_500_000)
        [batch] = claim_pending(session, config(), now=NOW, wallets_per_transaction=2)
        sign(session, batch.id, "sig")
        assert states.mark_confirmed(session, batch.id, slot=None, now=NOW)
        minted = [
            (e[1], e[2].get("wallet_address"), e[2].get("tokens_minted")) for e in events(session)
        ]
        assert minted == [(p.user_id, p.wallet, UNITS) for p in producers] + [(None, None, None)]
        assert batch_row(session, batch.id)["slot"] is None


def test_confirming_many_settles_each_in_id_order_in_one_transaction(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 3)
        seed_readings(session, producers, 2, kwh_micro=1_500_000)
        a, b, c = (
            batch.id
            for batch in claim_pending(session, config(), now=NOW, wallets_per_transaction=1)
        )
        for batch_id, name in ((a, "sig-a"), (b, "sig-b"), (c, "sig-c")):
            sign(session, batch_id, name)
        assert states.mark_confirmed(session, c, slot=5, now=NOW)  # another scheduler's win
        before = len(events(session))
        later = NOW + timedelta(seconds=3)
        # Slots in another order than ids: the batches are still settled in id order.
        assert states.mark_confirmed_many(session, [(b, 7), (c, 9), (a, 8)], now=later) == {a, b}
        assert states.mark_confirmed_many(session, [], now=later) == set()
        assert batch_row(session, a) == {
            **signed("sig-a"),
            "status": "confirmed",
            "slot": 8,
            "finished_at": later,
        }
        assert batch_row(session, b)["slot"] == 7 and batch_row(session, c)["slot"] == 5
        for batch_id, name in ((a, "sig-a"), (b, "sig-b")):
            assert reading_rows(session, batch_id) == [
                minting(i, batch_id, status="minted", mint_tx_signature=name, minted_at=later)
                for i in ids_of(session, batch_id)
            ]
        written = events(session)[before:]
        assert [(e[0], e[1], e[2]["batch_id"], e[3]) for e in written] == [
            ("tokens_minted", producers[0].user_id, a, later),
            ("batch_minting_completed", None, a, later),
            ("tokens_minted", producers[1].user_id, b, later),
            ("batch_minting_completed", None, b, later),
        ]
        assert written[2][2] == {
            "reading_ids": ids_of(session, b),
            "user_id": producers[1].user_id,
            "wallet_address": producers[1].wallet,
            "kwh_amount": "3.000000",
            "tokens_minted": 2 * UNITS,
            "transaction_signature": "sig-b",
            "batch_id": b,
        }
        assert written[3][2]["total_readings"] == 2 and written[3][2]["successful_mints"] == 2
        total = session.scalars(select(MintTotal)).one()
        assert (total.readings, total.base_units) == (6, 6 * UNITS)  # c's 2 counted once


def test_a_reading_no_longer_minting_is_left_alone(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _, a, b = two_batches(session)
        held, kept = ids_of(session, a)
        session.execute(update(MeterReading).where(MeterReading.id == held).values(status="review"))
        session.commit()
        sign(session, a, "sig-a")
        assert states.mark_confirmed(session, a, slot=5, now=NOW)
        assert reading_rows(session, ids=[held]) == [minting(held, a, status="review")]
        assert reading_rows(session, ids=[kept])[0]["status"] == "minted"
        payloads = [e[2] for e in events(session)]
        assert payloads[0]["reading_ids"] == [kept] and payloads[0]["tokens_minted"] == UNITS
        assert payloads[1]["total_readings"] == 1
        # The same guard when a batch expires or is released.
        b_held, b_kept = ids_of(session, b)
        session.execute(
            update(MeterReading).where(MeterReading.id == b_held).values(status="review")
        )
        session.commit()
        assert states.release_planned(session, b, reason="r", now=NOW)
        assert reading_rows(session, ids=[b_held, b_kept]) == [
            minting(b_held, b, status="review"),
            minting(b_kept, None, status="pending"),
        ]


def test_a_failed_try_backs_off_and_frees_the_readings(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _, a, b = two_batches(session)
        a_ids, b_ids = ids_of(session, a), ids_of(session, b)
        sign(session, a, "sig-a")
        sign(session, b, "sig-b")
        assert states.mark_failed(session, a, error="Custom(6)", config=config(), now=NOW)
        assert batch_row(session, a) == {
            **signed("sig-a"),
            "status": "failed",
            "error": "Custom(6)",
            "finished_at": NOW,
        }
        retry_at = NOW + timedelta(seconds=10)  # base 10 s × 2^(1-1)
        assert reading_rows(session, ids=a_ids) == [
            minting(
                i,
                None,
                status="pending",
                attempts=1,
                next_attempt_at=retry_at,
                last_error="Custom(6)",
            )
            for i in a_ids
        ]
        assert batch_row(session, b) == signed("sig-b")
        assert reading_rows(session, b) == [minting(i, b) for i in b_ids]
        assert events(session) == [
            (
                "mint_failed",
                None,
                {
                    "batch_id": a,
                    "reading_ids": a_ids,
                    "error": "Custom(6)",
                    "will_retry": True,
                    "transaction_signature": "sig-a",
                },
                NOW,
            ),
            (
                "batch_minting_completed",
                None,
                {
                    "batch_id": a,
                    "total_readings": 2,
                    "successful_mints": 0,
                    "failed_mints": 2,
                    "transaction_signature": "sig-a",
                },
                NOW,
            ),
        ]
        assert states.mark_failed(session, a, error="again", config=config(), now=NOW) is False
        assert batch_row(session, a)["error"] == "Custom(6)" and len(events(session)) == 2


def test_the_last_allowed_failure_fails_the_reading_for_an_admin(sessions) -> None:
    with sessions() as session:
        _, a, _ = two_batches(session)
        spent, fresh = ids_of(session, a)
        # One reading has used its retries (max_retries=2), the other has one left.
        session.execute(update(MeterReading).where(MeterReading.id == spent).values(attempts=2))
        session.execute(
            update(MeterReading)
            .where(MeterReading.id == fresh)
            .values(attempts=1, next_attempt_at=NOW - timedelta(seconds=1))
        )
        session.commit()
        sign(session, a, "sig-a")
        assert states.mark_failed(session, a, error="Custom(1)", config=config(), now=NOW)
        assert reading_rows(session, ids=[spent, fresh]) == [
            minting(spent, a, status="failed", attempts=3, last_error="Custom(1)"),
            minting(
                fresh,
                None,
                status="pending",
                attempts=2,
                next_attempt_at=NOW + timedelta(seconds=20),  # 10 s × 2^(2-1)
                last_error="Custom(1)",
            ),
        ]
        assert events(session)[0][2]["will_retry"] is True


def test_when_no_reading_can_retry_the_event_says_so(sessions) -> None:
    with sessions() as session:
        _, a, _ = two_batches(session)
        session.execute(
            update(MeterReading).where(MeterReading.mint_batch_id == a).values(attempts=2)
        )
        session.commit()
        sign(session, a, "sig-a")
        assert states.mark_failed(session, a, error="e", config=config(), now=NOW)
        assert {r["status"] for r in reading_rows(session, a)} == {"failed"}
        assert [r["next_attempt_at"] for r in reading_rows(session, a)] == [None, None]
        assert events(session)[0][2]["will_retry"] is False


def test_expiry_returns_readings_without_an_attempt(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _, a, b = two_batches(session)
        a_ids, b_ids = ids_of(session, a), ids_of(session, b)
        sign(session, a, "sig-a")
        sign(session, b, "sig-b")
        assert states.mark_expired(session, a, now=NOW) is True
        assert batch_row(session, a) == {
            **signed("sig-a"),
            "status": "expired",
            "error": "blockhash expired before the transaction landed",
            "finished_at": NOW,
        }
        assert reading_rows(session, ids=a_ids) == [
            minting(i, None, status="pending") for i in a_ids
        ]
        assert batch_row(session, b) == signed("sig-b")
        assert reading_rows(session, b) == [minting(i, b) for i in b_ids]
        assert states.mark_expired(session, a, now=NOW) is False
        assert states.mark_expired(session, 10**9, now=NOW) is False  # no such batch
        assert events(session) == []


def test_open_batches_are_the_planned_and_signed_in_id_order(sessions) -> None:
    with sessions() as session:
        producers = seed_producers(session, 6)
        seed_readings(session, producers, 1)
        ids = [b.id for b in claim_pending(session, config(), now=NOW, wallets_per_transaction=1)]
        # A signed batch before a planned one: id order is not status order.
        for batch_id, name in zip(ids[:4], ["s0", "s1", "s2", "s3"], strict=True):
            sign(session, batch_id, name)
        states.mark_confirmed(session, ids[1], slot=1, now=NOW)
        states.mark_failed(session, ids[2], error="e", config=config(), now=NOW)
        states.mark_expired(session, ids[3], now=NOW)
        states.release_planned(session, ids[4], reason="r", now=NOW)
        opened = states.open_batches(session)
        assert [(b.id, b.status) for b in opened] == [(ids[0], "signed"), (ids[5], "planned")]
