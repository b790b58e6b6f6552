"""Every lamport accounted: fees and rent from landed transactions, and the payer's balance.

An operation that landed (confirmed, or failed: a failed transaction pays its fee
too) gets its cost from the chain's own record of it (getTransaction): the fee
the payer paid, and every lamport that moved into another account (the rent of a
token account or a lookup table). The figures go on the operation's row and, one
line per lamport movement, into the `chain_costs` ledger keyed by operation. An
expired transaction never landed and never paid. Recording is idempotent
(guarded by fee_lamports IS NULL) and retried until the chain answers.

The fee payer's balance is read every mint cycle; `fee_payer_low` fires once when
it falls below TOKENIZATION_FEE_PAYER_MIN_SOL, and again only after it has been
topped up above the minimum and falls again. Minting carries on either way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from solders.pubkey import Pubkey
from solders.signature import Signature
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.status import TransactionCost
from core.db.models import BatchStatus, ChainCost, CostKind, FeePayer, MintBatch
from core.events import EventType, publish

log = logging.getLogger(__name__)

LAMPORTS_PER_SOL = 1_000_000_000
BACKFILL = timedelta(hours=24)  # on start: settled operations this recent without a cost


def record_cost(
    session: Session, operation_id: int, kind: str, cost: TransactionCost, *, now: datetime
) -> bool:
    """Write one operation's fee and rent (row and ledger) in the caller's transaction.

    False, writing nothing, when its cost is already recorded (or there is no such row).
    """
    rent = sum(change.after - change.before for change in cost.rent)
    moved = session.execute(
        update(MintBatch)
        .where(MintBatch.id == operation_id, MintBatch.fee_lamports.is_(None))
        .values(fee_lamports=cost.fee, rent_lamports=rent, compute_units=cost.compute_units)
    ).rowcount
    if moved != 1:
        return False
    common = {
        "operation_id": operation_id,
        "operation_kind": kind,
        "signature": cost.signature,
        "slot": cost.slot,
        "recorded_at": now,
    }
    rows = [
        {**common, "kind": CostKind.FEE.value, "account": str(cost.fee_payer), "lamports": cost.fee}
    ]
    rows += [
        {
            **common,
            "kind": CostKind.RENT.value,
            "account": str(change.account),
            "lamports": change.after - change.before,
        }
        for change in cost.rent
    ]
    session.execute(insert(ChainCost), rows)
    return True


def record_costs(
    sessions: sessionmaker[Session],
    chain: ChainClient,
    operation_ids: Sequence[int],
    *,
    now: datetime,
) -> list[int]:
    """Record what the chain says each landed operation cost; returns those still unknown.

    Every cost the chain knows is written in one database transaction.
    """
    with sessions() as session:
        rows = session.execute(
            select(MintBatch.id, MintBatch.kind, MintBatch.signature)
            .where(
                MintBatch.id.in_(list(operation_ids)),
                MintBatch.fee_lamports.is_(None),
                MintBatch.signature.is_not(None),
                MintBatch.status.in_([BatchStatus.CONFIRMED.value, BatchStatus.FAILED.value]),
            )
            .order_by(MintBatch.id)  # rows locked in id order: no deadlock with another scheduler
        ).all()
    unknown, known = [], []
    for operation_id, kind, signature in rows:
        cost = chain.transaction_cost(Signature.from_string(signature))
        if cost is None:
            unknown.append(operation_id)  # not yet visible at `confirmed`: ask again
        else:
            known.append((operation_id, kind, cost))
    if known:
        with sessions() as session:
            for operation_id, kind, cost in known:
                record_cost(session, operation_id, kind, cost, now=now)
            session.commit()
    return unknown


def uncosted_operations(session: Session, *, now: datetime) -> list[int]:
    """Recently settled operations whose cost is not recorded (a crash came in between)."""
    return list(
        session.scalars(
            select(MintBatch.id).where(
                MintBatch.created_at >= now - BACKFILL,
                MintBatch.fee_lamports.is_(None),
                MintBatch.signature.is_not(None),
                MintBatch.status.in_([BatchStatus.CONFIRMED.value, BatchStatus.FAILED.value]),
            )
        )
    )


def spent_since(session: Session, since: datetime) -> int:
    """Lamports taken from the payer since `since`: fees and rent deposits."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(ChainCost.lamports), 0)).where(
                ChainCost.recorded_at >= since
            )
        )
    )


def sol_to_lamports(sol: Decimal) -> int:
    return int(sol * LAMPORTS_PER_SOL)


def lamports_to_sol(lamports: int) -> str:
    return format(Decimal(lamports).scaleb(-9).normalize(), "f")


def watch_fee_payer(
    session: Session, payer: str, lamports: int, *, min_sol: Decimal, now: datetime
) -> bool:
    """Store the payer's balance; publish fee_payer_low on a downward crossing. Commits.

    Returns True when the event was published.
    """
    min_lamports = sol_to_lamports(min_sol)
    low = lamports < min_lamports
    row = session.get(FeePayer, payer, with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    FeePayer(
                        address=payer,
                        lamports=lamports,
                        min_lamports=min_lamports,
                        low=False,
                        read_at=now,
                    )
                )
        except IntegrityError:  # another scheduler recorded it first
            pass
        row = session.get(FeePayer, payer, with_for_update=True, populate_existing=True)
        assert row is not None
    alert = low and not row.low
    row.lamports, row.min_lamports, row.low, row.read_at = lamports, min_lamports, low, now
    if alert:
        per_day = spent_since(session, now - timedelta(days=1))
        payload = {
            "fee_payer": payer,
            "balance_lamports": lamports,
            "min_lamports": min_lamports,
            "balance_sol": lamports_to_sol(lamports),
            "min_sol": lamports_to_sol(min_lamports),
            "spent_last_24h_lamports": per_day,
            "runway_days": None if per_day == 0 else round(lamports / per_day, 2),
        }
        publish(session, EventType.FEE_PAYER_LOW, payload, at=now)
        log.warning(
            "fee payer %s holds %s SOL, below the minimum %s SOL: fund it (docs/OPERATIONS.md)",
            payer,
            payload["balance_sol"],
            payload["min_sol"],
        )
    session.commit()
    return alert


def read_fee_payer(
    sessions: sessionmaker[Session],
    chain: ChainClient,
    payer: Pubkey,
    *,
    min_sol: Decimal,
    now: datetime,
) -> bool:
    """Read the payer's balance from the chain and watch it; True when an alert fired."""
    lamports = chain.sol_balance(payer)
    with sessions() as session:
        return watch_fee_payer(session, str(payer), lamports, min_sol=min_sol, now=now)
