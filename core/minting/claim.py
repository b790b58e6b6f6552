"""Step 1 of DESIGN "Minting exactly once": claim pending readings and plan their batches.

One database transaction picks readings that are due (PostgreSQL: FOR UPDATE SKIP
LOCKED, so several schedulers never take the same reading; SQLite: the write lock
taken by BEGIN IMMEDIATE), records each reading's base units and the ratio
applied, inserts one `planned` mint_batches row per transaction and moves the
readings to `minting`. Readings without a valid wallet fail alone, with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import BatchStatus, MeterReading, MintBatch, MintRequest, ReadingStatus
from core.events import EventType, publish
from core.minting.plan import ClaimedReading, Plan, plan_claim


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    mints: list[tuple[str, int]]  # (wallet address, base units), one per wallet
    reading_ids: list[int]
    total_base_units: int


def due_readings_query(config: TokenizationConfig, now: datetime, mint_now_upto: int | None):
    """Pending readings whose backoff has passed and that may be minted now."""
    allowed = (
        true()
        if config.auto_mint_enabled
        else or_(
            MeterReading.mint_requested_at.is_not(None),
            MeterReading.id <= (mint_now_upto if mint_now_upto is not None else 0),
        )
    )
    return (
        select(
            MeterReading.id,
            MeterReading.user_id,
            MeterReading.wallet_address,
            MeterReading.kwh_micro,
        )
        .where(
            MeterReading.status == ReadingStatus.PENDING.value,
            or_(MeterReading.next_attempt_at.is_(None), MeterReading.next_attempt_at <= now),
            allowed,
        )
        .order_by(MeterReading.id)
    )


def claim_pending(
    session: Session,
    config: TokenizationConfig,
    *,
    now: datetime,
    wallets_per_transaction: int,
    requested_by: int | None = None,
) -> list[ClaimedBatch]:
    """Claim up to `config.batch_size` due readings and plan them; commits. [] when none."""
    mint_now_upto = session.scalar(select(func.max(MintRequest.upto_reading_id)))
    query = due_readings_query(config, now, mint_now_upto).limit(config.batch_size)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=MeterReading)
    rows = [ClaimedReading(*row) for row in session.execute(query)]
    if not rows:
        session.rollback()
        return []
    plan = plan_claim(
        rows,
        ratio=config.kwh_to_token_ratio,
        decimals=config.decimals,
        wallets_per_transaction=wallets_per_transaction,
    )
    claimed = _insert_batches(session, plan, now, requested_by)
    _record_readings(session, plan, config, claimed, now)
    session.commit()
    return claimed


def _insert_batches(
    session: Session, plan: Plan, now: datetime, requested_by: int | None
) -> list[ClaimedBatch]:
    claimed = []
    for group in plan.batches:
        reading_ids = [rid for mint in group for rid in mint.reading_ids]
        total = sum(mint.base_units for mint in group)
        batch_id = session.scalar(
            insert(MintBatch)
            .values(
                status=BatchStatus.PLANNED.value,
                attempt=0,
                total_readings=len(reading_ids),
                total_base_units=total,
                requested_by=requested_by,
                created_at=now,
            )
            .returning(MintBatch.id)
        )
        assert batch_id is not None
        mints = [(mint.wallet_address, mint.base_units) for mint in group]
        claimed.append(ClaimedBatch(batch_id, mints, reading_ids, total))
    return claimed


def _record_readings(
    session: Session,
    plan: Plan,
    config: TokenizationConfig,
    claimed: list[ClaimedBatch],
    now: datetime,
) -> None:
    ratio = config.kwh_to_token_ratio
    updates = [
        {
            "id": rid,
            "status": ReadingStatus.MINTING.value,
            "mint_batch_id": batch.id,
            "token_base_units": plan.base_units[rid],
            "ratio_applied": ratio,
        }
        for batch in claimed
        for rid in batch.reading_ids
    ]
    # Worth nothing at this ratio: done, with the zero recorded, no transaction needed.
    updates += [
        {
            "id": rid,
            "status": ReadingStatus.MINTED.value,
            "mint_batch_id": None,
            "token_base_units": 0,
            "ratio_applied": ratio,
            "minted_at": now,
        }
        for rid in plan.nothing_to_mint
    ]
    if updates:
        session.execute(update(MeterReading), _uniform(updates))
    if plan.invalid_wallet:
        reason = "the reading has no valid Solana wallet address (base58 of 32 bytes)"
        session.execute(
            update(MeterReading)
            .where(MeterReading.id.in_(plan.invalid_wallet))
            .values(status=ReadingStatus.FAILED.value, last_error=reason, ratio_applied=ratio)
        )
        publish(
            session,
            EventType.MINT_FAILED,
            {
                "batch_id": None,
                "reading_ids": plan.invalid_wallet,
                "error": reason,
                "will_retry": False,
            },
        )


def _uniform(rows: list[dict]) -> list[dict]:
    """Bulk UPDATE by primary key needs every row to name the same columns."""
    keys = sorted({key for row in rows for key in row})
    return [{key: row.get(key) for key in keys} for row in rows]
