"""Step 1 of DESIGN "Minting exactly once": claim due readings and plan their batches.

One database transaction looks at the oldest pending readings, groups them by
wallet (one MintTo per wallet, all its waiting readings), decides with
core.minting.fill which transactions go out now (full, or carrying a reading that
waited TOKENIZATION_MAX_MINT_WAIT_SECS, or asked for by an admin), locks those
readings (PostgreSQL: FOR UPDATE SKIP LOCKED, so several schedulers never take the
same reading; SQLite: the write lock taken by BEGIN IMMEDIATE), records each
reading's base units and the ratio applied, inserts one `planned` mint_batches
row per transaction and moves the readings to `minting`. Readings without a valid
wallet fail alone, with their reason. What waits is left untouched; the claim
says when the oldest of it becomes due.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from core.config import TokenizationConfig
from core.db.models import BatchStatus, MeterReading, MintBatch, MintRequest, ReadingStatus
from core.events import EventType, publish
from core.minting.fill import Capacity, PlannedTransaction, WaitingWallet, choose_transactions
from core.minting.plan import ClaimedReading, WalletMint, plan_claim
from core.minting.totals import add_minted

# How many of the oldest pending readings one claim looks at: enough to fill
# transactions for a large fleet, bounded so a backlog costs a claim no more.
PENDING_SCAN_LIMIT = 5000
_LOCK_ROUNDS = 3  # on PostgreSQL, choose again when another scheduler took our choice

TablesOf = Callable[[Session, Sequence[str]], dict[str, str]]


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    mints: list[tuple[str, int]]  # (wallet address, base units), one per wallet
    reading_ids: list[int]
    total_base_units: int
    tables: tuple[str, ...] = ()  # lookup tables of a v0 transaction; () for legacy


@dataclass(frozen=True)
class Claim:
    batches: list[ClaimedBatch]
    next_due_at: datetime | None  # when readings left waiting become due (None: none wait)


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
            MeterReading.submitted_at,
            MeterReading.mint_requested_at,
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
    """`claim_due` for legacy transactions of `wallets_per_transaction` mints. Commits."""
    capacity = Capacity(legacy=wallets_per_transaction)
    return claim_due(session, config, now=now, capacity=capacity, requested_by=requested_by).batches


def claim_due(
    session: Session,
    config: TokenizationConfig,
    *,
    now: datetime,
    capacity: Capacity,
    tables_of: TablesOf | None = None,
    requested_by: int | None = None,
    room: int = 0,
) -> Claim:
    """Claim the transactions due now; commits.

    A claim takes whole transactions, oldest first, until it holds at least
    batch_size readings (so at least one transaction when any is due) and at
    least `room` transactions (the caller's free places in flight): a scan of
    the pending readings costs the same for 3 transactions as for 100, so every
    transaction due goes out from one claim when there is room for it. When due
    transactions are left for lack of room, `next_due_at` is `now`.
    """
    mint_now_upto = session.scalar(select(func.max(MintRequest.upto_reading_id)))
    limit = max(config.batch_size, PENDING_SCAN_LIMIT)
    rows = session.execute(due_readings_query(config, now, mint_now_upto).limit(limit)).all()
    if not rows:
        session.rollback()
        return Claim([], None)
    readings = [
        ClaimedReading(row.id, row.user_id, row.wallet_address, row.kwh_micro) for row in rows
    ]
    plan = plan_claim(
        readings,
        ratio=config.kwh_to_token_ratio,
        decimals=config.decimals,
        wallets_per_transaction=len(readings),
    )
    forced = {
        row.id
        for row in rows
        if row.mint_requested_at is not None or row.id <= (mint_now_upto or 0)
    }
    accepted = {row.id: row.submitted_at for row in rows}
    groups = {mint.wallet_address: mint for batch in plan.batches for mint in batch}
    tables = tables_of(session, list(groups)) if tables_of and capacity.by_tables else {}
    waiting = [
        WaitingWallet(
            wallet=wallet,
            table=tables.get(wallet),
            oldest=min(accepted[rid] for rid in mint.reading_ids),
            forced=any(rid in forced for rid in mint.reading_ids),
            readings=len(mint.reading_ids),
        )
        for wallet, mint in groups.items()
    ]
    max_wait = timedelta(seconds=config.max_mint_wait_secs)
    fill = choose_transactions(waiting, capacity, now=now, max_wait=max_wait)
    due = fill.transactions
    chosen = _take(due, config.batch_size, room)
    settle_alone = plan.invalid_wallet + plan.nothing_to_mint
    excluded: set[int] = set()
    for _ in range(_LOCK_ROUNDS):
        wanted = [rid for tx in chosen for w in tx.wallets for rid in groups[w.wallet].reading_ids]
        locked = _lock(session, wanted + settle_alone)
        transactions = _locked_transactions(chosen, groups, plan.base_units, locked)
        if transactions or not chosen:
            break
        excluded |= set(wanted)  # another scheduler holds them: choose among the rest
        remaining = [w for w in waiting if not set(groups[w.wallet].reading_ids) & excluded]
        due = choose_transactions(remaining, capacity, now=now, max_wait=max_wait).transactions
        chosen = _take(due, config.batch_size, room)
    claimed = _insert_batches(session, transactions, now, requested_by)
    _record_readings(
        session,
        config,
        claimed,
        plan.base_units,
        invalid=[rid for rid in plan.invalid_wallet if rid in locked],
        nothing=[rid for rid in plan.nothing_to_mint if rid in locked],
        now=now,
    )
    session.commit()
    left_due = len(chosen) < len(due)  # due now, left for lack of room
    return Claim(claimed, now if left_due else fill.next_due_at)


def _take(
    transactions: list[PlannedTransaction], batch_size: int, room: int
) -> list[PlannedTransaction]:
    """The first transactions, until both batch_size readings and `room` transactions."""
    taken, readings = [], 0
    for tx in transactions:
        if readings >= batch_size and len(taken) >= room:
            break
        taken.append(tx)
        readings += sum(wallet.readings for wallet in tx.wallets)
    return taken


def _lock(session: Session, reading_ids: list[int]) -> set[int]:
    """The readings that are ours to claim: on PostgreSQL, those nobody else has locked."""
    if not reading_ids:
        return set()
    if session.get_bind().dialect.name != "postgresql":
        return set(reading_ids)  # BEGIN IMMEDIATE: this transaction is the only writer
    locked: set[int] = set()
    for start in range(0, len(reading_ids), 1000):
        chunk = reading_ids[start : start + 1000]
        locked |= set(
            session.scalars(
                select(MeterReading.id)
                .where(
                    MeterReading.id.in_(chunk),
                    MeterReading.status == ReadingStatus.PENDING.value,
                )
                .with_for_update(skip_locked=True)
            )
        )
    return locked


def _locked_transactions(
    chosen: list[PlannedTransaction],
    groups: dict[str, WalletMint],
    base_units: dict[int, int],
    locked: set[int],
) -> list[tuple[list[WalletMint], list[str]]]:
    """The chosen transactions restricted to the readings we hold: (mints, tables) each."""
    transactions = []
    for tx in chosen:
        mints = []
        for wallet in tx.wallets:
            ids = [rid for rid in groups[wallet.wallet].reading_ids if rid in locked]
            if ids:
                mints.append(WalletMint(wallet.wallet, sum(base_units[r] for r in ids), ids))
        if mints:
            transactions.append((mints, tx.tables))
    return transactions


def _insert_batches(
    session: Session,
    transactions: list[tuple[list[WalletMint], list[str]]],
    now: datetime,
    requested_by: int | None,
) -> list[ClaimedBatch]:
    claimed = []
    for group, tables in transactions:
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
                version="v0" if tables else "legacy",
                mint_count=len(group),
            )
            .returning(MintBatch.id)
        )
        assert batch_id is not None
        mints = [(mint.wallet_address, mint.base_units) for mint in group]
        claimed.append(ClaimedBatch(batch_id, mints, reading_ids, total, tuple(tables)))
    return claimed


def _record_readings(
    session: Session,
    config: TokenizationConfig,
    claimed: list[ClaimedBatch],
    base_units: dict[int, int],
    *,
    invalid: list[int],
    nothing: list[int],
    now: datetime,
) -> None:
    ratio = config.kwh_to_token_ratio
    updates = [
        {
            "id": rid,
            "status": ReadingStatus.MINTING.value,
            "mint_batch_id": batch.id,
            "token_base_units": base_units[rid],
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
        for rid in nothing
    ]
    if updates:
        session.execute(update(MeterReading), _uniform(updates))
    add_minted(session, len(nothing), 0)
    if invalid:
        reason = "the reading has no valid Solana wallet address (base58 of 32 bytes)"
        session.execute(
            update(MeterReading)
            .where(MeterReading.id.in_(invalid))
            .values(status=ReadingStatus.FAILED.value, last_error=reason, ratio_applied=ratio)
        )
        publish(
            session,
            EventType.MINT_FAILED,
            {
                "batch_id": None,
                "reading_ids": invalid,
                "error": reason,
                "will_retry": False,
            },
        )


def _uniform(rows: list[dict]) -> list[dict]:
    """Bulk UPDATE by primary key needs every row to name the same columns."""
    keys = sorted({key for row in rows for key in row})
    return [{key: row.get(key) for key in keys} for row in rows]
