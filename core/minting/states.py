"""The minting state machine: every transition of a batch and its readings, in one place.

    batch                           readings
    planned --sign-->    signed     minting
    planned --release--> expired    minting -> pending   (never signed, nothing was sent)
    planned --hold-->    planned    some wallets' readings -> pending later (no token account)
    signed  --confirm--> confirmed  minting -> minted    (+ tokens_minted, batch_minting_completed)
    signed  --fail-->    failed     minting -> pending after a backoff, failed after max retries
    signed  --expire-->  expired    minting -> pending   (the blockhash passed, it never landed)

Operations other than mints (token accounts, lookup tables: `kind`) share the same
rows and moves but carry no readings: `mark_operation_settled` records their
confirmed or failed outcome without mint events; planned ones release and signed
ones expire as above.

Each transition is one database transaction guarded by the batch's current status
(`UPDATE ... WHERE status = <from>`): when two schedulers race, exactly one wins and
the loser does nothing, so a batch is never sent after release, never finalized twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import BatchStatus, MeterReading, MintBatch, OperationKind, ReadingStatus
from core.events import EventType, publish, publish_many
from core.minting.plan import backoff_seconds
from core.minting.totals import add_minted
from core.units import format_kwh


def _move_batch(session: Session, batch_id: int, source: BatchStatus, **values) -> bool:
    result = session.execute(
        update(MintBatch)
        .where(MintBatch.id == batch_id, MintBatch.status == source.value)
        .values(**values)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class SignedBatch:
    batch_id: int
    signature: str
    raw_tx: bytes
    blockhash: str
    last_valid_block_height: int
    signer: str | None = None  # the authority's signer, e.g. "file" or "vault-transit:transit/grx"
    signer_key_version: int | None = None


def _settle(
    session: Session, batch_id: int, outcome: BatchStatus, **values: object
) -> MintBatch | None:
    """Move a signed batch to its outcome; None (rolled back) when someone else did."""
    batch = session.get(MintBatch, batch_id)
    if batch is None or not _move_batch(
        session, batch_id, BatchStatus.SIGNED, status=outcome.value, **values
    ):
        session.rollback()
        return None
    return batch


def mark_signed_many(session: Session, signed: Sequence[SignedBatch], *, now: datetime) -> set[int]:
    """Persist signed transactions before any is sent; returns the ids still ours to send.

    A batch released meanwhile (by recovery elsewhere) is not moved and must not be sent.
    """
    kept = {
        item.batch_id
        for item in signed
        if _move_batch(
            session,
            item.batch_id,
            BatchStatus.PLANNED,
            status=BatchStatus.SIGNED.value,
            signature=item.signature,
            raw_tx=item.raw_tx,
            blockhash=item.blockhash,
            last_valid_block_height=item.last_valid_block_height,
            signer=item.signer,
            signer_key_version=item.signer_key_version,
            attempt=MintBatch.attempt + 1,
            signed_at=now,
        )
    }
    session.commit()
    return kept


def release_planned(session: Session, batch_id: int, *, reason: str, now: datetime) -> bool:
    """A planned batch that was never signed gives its readings back. Commits."""
    if not _move_batch(
        session,
        batch_id,
        BatchStatus.PLANNED,
        status=BatchStatus.EXPIRED.value,
        error=reason,
        finished_at=now,
    ):
        session.rollback()
        return False
    _readings_back_to_pending(session, batch_id)
    session.commit()
    return True


def hold_wallets(
    session: Session,
    batch_id: int,
    wallets: Sequence[str],
    *,
    reason: str,
    until: datetime,
    now: datetime,
) -> list[int]:
    """Take these wallets' readings out of a planned batch: pending again, after `until`.

    Not an attempt (nothing was sent); the reason is kept on the readings and told
    once in a mint_failed event (will_retry: true). A batch left with nothing is
    released. Returns the readings held; [] when the batch is no longer planned. Commits.
    """
    batch = session.get(MintBatch, batch_id, with_for_update=True)
    if batch is None or batch.status != BatchStatus.PLANNED.value:
        session.rollback()
        return []
    held = list(
        session.scalars(
            select(MeterReading)
            .where(
                MeterReading.mint_batch_id == batch_id,
                MeterReading.status == ReadingStatus.MINTING.value,
                MeterReading.wallet_address.in_(list(wallets)),
            )
            .order_by(MeterReading.id)
        )
    )
    newly = [reading.id for reading in held if reading.last_error != reason]
    for reading in held:
        reading.status = ReadingStatus.PENDING.value
        reading.mint_batch_id = None
        reading.next_attempt_at = until
        reading.last_error = reason
    batch.total_readings -= len(held)
    batch.total_base_units -= sum(reading.token_base_units or 0 for reading in held)
    batch.mint_count = (batch.mint_count or 0) - len({reading.wallet_address for reading in held})
    if batch.total_readings <= 0:
        batch.status, batch.error, batch.finished_at = BatchStatus.EXPIRED.value, reason, now
    if newly:
        publish(
            session,
            EventType.MINT_FAILED,
            {"batch_id": batch_id, "reading_ids": newly, "error": reason, "will_retry": True},
            at=now,
        )
    session.commit()
    return [reading.id for reading in held]


def mark_confirmed(session: Session, batch_id: int, *, slot: int | None, now: datetime) -> bool:
    """The transaction landed without error: readings minted, events written. Commits."""
    return batch_id in mark_confirmed_many(session, [(batch_id, slot)], now=now)


def mark_confirmed_many(
    session: Session, landed: Sequence[tuple[int, int | None]], *, now: datetime
) -> set[int]:
    """`mark_confirmed` for (batch id, slot) pairs, all in one transaction. Commits.

    Returns the batches moved; one another scheduler settled first is left alone.
    Batches are moved in id order, so two schedulers settling overlapping sets
    take their row locks in the same order and never deadlock.
    """
    moved: dict[int, str | None] = {}
    for batch_id, slot in sorted(landed, key=lambda item: item[0]):
        signature = session.scalar(
            update(MintBatch)
            .where(MintBatch.id == batch_id, MintBatch.status == BatchStatus.SIGNED.value)
            .values(status=BatchStatus.CONFIRMED.value, slot=slot, finished_at=now)
            .returning(MintBatch.signature)
        )
        if signature is not None:
            moved[batch_id] = signature
    if not moved:
        session.rollback()
        return set()
    readings = list(
        session.scalars(
            select(MeterReading)
            .where(
                MeterReading.mint_batch_id.in_(list(moved)),
                MeterReading.status == ReadingStatus.MINTING.value,
            )
            .order_by(MeterReading.id)
        )
    )
    for batch_id, signature in moved.items():
        session.execute(
            update(MeterReading)
            .where(
                MeterReading.mint_batch_id == batch_id,
                MeterReading.status == ReadingStatus.MINTING.value,
            )
            .values(
                status=ReadingStatus.MINTED.value,
                mint_tx_signature=signature,
                minted_at=now,
                last_error=None,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )
    add_minted(session, len(readings), sum(r.token_base_units or 0 for r in readings))
    by_batch: dict[int, list[MeterReading]] = defaultdict(list)
    for reading in readings:
        by_batch[int(reading.mint_batch_id or 0)].append(reading)
    events: list[tuple[EventType, dict, int | None]] = []
    for batch_id, signature in moved.items():
        events += _minted_events(batch_id, signature, by_batch[batch_id])
    publish_many(session, events, at=now)
    session.commit()
    return set(moved)


def _minted_events(
    batch_id: int, signature: str | None, readings: list[MeterReading]
) -> list[tuple[EventType, dict, int | None]]:
    """One tokens_minted per wallet (to its prosumer), then the batch's completion."""
    groups: dict[tuple[str, int], list[MeterReading]] = defaultdict(list)
    for reading in readings:
        groups[(str(reading.wallet_address), reading.user_id)].append(reading)
    events: list[tuple[EventType, dict, int | None]] = [
        (
            EventType.TOKENS_MINTED,
            {
                "reading_ids": [r.id for r in group],
                "user_id": user_id,
                "wallet_address": wallet,
                "kwh_amount": format_kwh(sum(r.kwh_micro for r in group), micro=True),
                "tokens_minted": sum(r.token_base_units or 0 for r in group),
                "transaction_signature": signature,
                "batch_id": batch_id,
            },
            user_id,
        )
        for (wallet, user_id), group in groups.items()
    ]
    events.append(
        (
            EventType.BATCH_MINTING_COMPLETED,
            _completed_payload(batch_id, signature, minted=len(readings), failed=0),
            None,
        )
    )
    return events


def mark_failed(
    session: Session,
    batch_id: int,
    *,
    error: str,
    config: TokenizationConfig,
    now: datetime,
) -> bool:
    """Landed with an error: nothing was minted; readings retry with backoff. Commits."""
    batch = _settle(session, batch_id, BatchStatus.FAILED, error=error, finished_at=now)
    if batch is None:
        return False
    readings = _batch_readings(session, batch_id)
    will_retry = False
    for reading in readings:
        reading.attempts += 1
        reading.last_error = error
        if reading.attempts > config.max_retries:
            reading.status = ReadingStatus.FAILED.value
            reading.next_attempt_at = None
        else:
            will_retry = True
            reading.status = ReadingStatus.PENDING.value
            reading.mint_batch_id = None
            delay = backoff_seconds(reading.attempts, config.retry_base_secs)
            reading.next_attempt_at = now + timedelta(seconds=delay)
    publish(
        session,
        EventType.MINT_FAILED,
        {
            "batch_id": batch_id,
            "reading_ids": [r.id for r in readings],
            "error": error,
            "will_retry": will_retry,
            "transaction_signature": batch.signature,
        },
        at=now,
    )
    _batch_completed(session, batch, minted=0, failed=len(readings), now=now)
    session.commit()
    return True


def mark_expired(session: Session, batch_id: int, *, now: datetime) -> bool:
    """Never landed and can no longer land: readings go back to be re-signed. Commits."""
    reason = "blockhash expired before the transaction landed"
    if _settle(session, batch_id, BatchStatus.EXPIRED, error=reason, finished_at=now) is None:
        return False
    _readings_back_to_pending(session, batch_id)
    session.commit()
    return True


def mark_operation_settled(
    session: Session,
    batch_id: int,
    outcome: str,
    *,
    slot: int | None,
    error: str | None,
    now: datetime,
) -> bool:
    """A non-mint operation landed (confirmed) or landed with an error (failed). Commits."""
    target = BatchStatus(outcome)
    if target not in (BatchStatus.CONFIRMED, BatchStatus.FAILED):
        raise ValueError(f"an operation settles as confirmed or failed, not {outcome}")
    values: dict[str, object] = {"slot": slot, "finished_at": now}
    if target is BatchStatus.FAILED:
        values["error"] = error or "failed on chain"
    batch = _settle(session, batch_id, target, **values)
    if batch is None:
        return False
    if batch.kind == OperationKind.SET_AUTHORITY.value and target is BatchStatus.CONFIRMED:
        _authority_moved(session, batch, now)
    session.commit()
    return True


def _authority_moved(session: Session, batch: MintBatch, now: datetime) -> None:
    """SetAuthority landed: the payload names the old and the new mint authority."""
    publish(
        session,
        EventType.MINT_AUTHORITY_CHANGED,
        {
            "batch_id": batch.id,
            **(batch.payload or {}),
            "signer": batch.signer,
            "signer_key_version": batch.signer_key_version,
            "transaction_signature": batch.signature,
        },
        at=now,
    )


def _batch_completed(
    session: Session, batch: MintBatch, *, minted: int, failed: int, now: datetime
) -> None:
    """The staff event that closes a batch (a transaction mints all of it or none)."""
    payload = _completed_payload(batch.id, batch.signature, minted=minted, failed=failed)
    publish(session, EventType.BATCH_MINTING_COMPLETED, payload, at=now)


def _completed_payload(
    batch_id: int, signature: str | None, *, minted: int, failed: int
) -> dict[str, object]:
    return {
        "batch_id": batch_id,
        "total_readings": minted + failed,
        "successful_mints": minted,
        "failed_mints": failed,
        "transaction_signature": signature,
    }


def _readings_back_to_pending(session: Session, batch_id: int) -> None:
    # Not an attempt: the chain never saw the transaction, the reading did nothing wrong.
    session.execute(
        update(MeterReading)
        .where(
            MeterReading.mint_batch_id == batch_id,
            MeterReading.status == ReadingStatus.MINTING.value,
        )
        .values(status=ReadingStatus.PENDING.value, mint_batch_id=None)
    )


def _batch_readings(session: Session, batch_id: int) -> list[MeterReading]:
    return list(
        session.scalars(
            select(MeterReading)
            .where(
                MeterReading.mint_batch_id == batch_id,
                MeterReading.status == ReadingStatus.MINTING.value,
            )
            .order_by(MeterReading.id)
        )
    )


def open_batches(session: Session) -> list[MintBatch]:
    """Batches whose outcome is not yet recorded (recovery works through them)."""
    return list(
        session.scalars(
            select(MintBatch)
            .where(MintBatch.status.in_([BatchStatus.PLANNED.value, BatchStatus.SIGNED.value]))
            .order_by(MintBatch.id)
        )
    )
