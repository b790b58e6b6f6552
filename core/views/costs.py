"""Costs: what minting spent and locked, from the recorded ledger, never estimated.

Fees are what landed transactions paid (signatures and priority fee), rent is
what they deposited into token accounts and lookup tables (locked, not gone);
both come from `chain_costs`, written from each transaction's meta. Lamports per
reading divide the fees of every operation (mints, token accounts, lookup
tables) by the readings minted in the same period, counted from the 15-minute
buckets of `minted_buckets` (core.minting.minted_buckets), not from rows. Runway is the payer's last
read balance over what the last 24 hours took (fees and rent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db.models import (
    ChainCost,
    CostKind,
    FeePayer,
    MintBatch,
    OperationKind,
    User,
)
from core.minting.minted_buckets import minted_between, minted_per_bucket
from core.views._sql import Window, day_start, from_epoch, require_staff, time_bucket

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class PeriodCost:
    fees_lamports: int
    rent_lamports: int
    transactions: int  # landed transactions whose cost was recorded
    readings_minted: int

    @property
    def lamports_per_reading(self) -> Decimal | None:
        if not self.readings_minted:
            return None
        return (Decimal(self.fees_lamports) / self.readings_minted).quantize(CENT, ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class CostPoint:
    bucket_start: datetime
    cost: PeriodCost


@dataclass(frozen=True, slots=True)
class PayerState:
    address: str
    balance_lamports: int
    min_lamports: int
    low: bool
    read_at: datetime


@dataclass(frozen=True, slots=True)
class Costs:
    fee_payer: PayerState | None
    today: PeriodCost
    last_30_days: PeriodCost
    rent_locked_lamports: dict[str, int]  # by operation kind: token_accounts, lookup_table
    spent_last_24h_lamports: int
    mints_per_transaction: Decimal | None  # MintTo per landed mint transaction, 30 days
    hourly: list[CostPoint]  # the last 24 hours
    daily: list[CostPoint]  # the last 30 days

    @property
    def runway_days(self) -> Decimal | None:
        return _runway(self.fee_payer, self.spent_last_24h_lamports)


def _runway(payer: PayerState | None, spent_last_24h: int) -> Decimal | None:
    """Days the payer's balance lasts at the last 24 hours' rate (None: nothing spent)."""
    if payer is None or not spent_last_24h:
        return None
    return (Decimal(payer.balance_lamports) / spent_last_24h).quantize(CENT, ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class CostsToday:
    """The Overview's share of the costs: today, the payer and its runway, without the
    30-day series (which read a month of the ledger)."""

    fee_payer: PayerState | None
    today: PeriodCost
    spent_last_24h_lamports: int

    @property
    def runway_days(self) -> Decimal | None:
        return _runway(self.fee_payer, self.spent_last_24h_lamports)


def _sum_of(kind: CostKind) -> ColumnElement[int]:
    return func.coalesce(func.sum(ChainCost.lamports).filter(ChainCost.kind == kind.value), 0)


def _period(session: Session, since: datetime, until: datetime) -> PeriodCost:
    fees, rent, transactions = session.execute(
        select(
            _sum_of(CostKind.FEE),
            _sum_of(CostKind.RENT),
            func.count().filter(ChainCost.kind == CostKind.FEE.value),
        ).where(ChainCost.recorded_at >= since, ChainCost.recorded_at < until)
    ).one()
    minted = minted_between(session, since, until)
    return PeriodCost(int(fees), int(rent), int(transactions), minted)


def _series(session: Session, window: Window) -> list[CostPoint]:
    bucket = time_bucket(ChainCost.recorded_at, window.bucket_secs).label("bucket")
    ledger = {
        int(start): (int(fees), int(rent), int(count))
        for start, fees, rent, count in session.execute(
            select(
                bucket,
                _sum_of(CostKind.FEE),
                _sum_of(CostKind.RENT),
                func.count().filter(ChainCost.kind == CostKind.FEE.value),
            )
            .where(ChainCost.recorded_at >= window.since, ChainCost.recorded_at < window.until)
            .group_by(bucket)
        )
    }
    minted = minted_per_bucket(session, window.since, window.until, window.bucket_secs)
    points = []
    for start in window.starts():
        fees, rent, count = ledger.get(start, (0, 0, 0))
        points.append(
            CostPoint(from_epoch(start), PeriodCost(fees, rent, count, minted.get(start, 0)))
        )
    return points


def _payer(session: Session) -> PayerState | None:
    payer = session.scalars(select(FeePayer).order_by(FeePayer.read_at.desc()).limit(1)).first()
    if payer is None:
        return None
    return PayerState(payer.address, payer.lamports, payer.min_lamports, payer.low, payer.read_at)


def _spent_last_24h(session: Session, now: datetime) -> int:
    spent = session.scalar(
        select(func.coalesce(func.sum(ChainCost.lamports), 0)).where(
            ChainCost.recorded_at >= now - timedelta(days=1)
        )
    )
    return int(spent or 0)


def costs_today(session: Session, viewer: User, now: datetime) -> CostsToday:
    """Today's fees and rent, the fee payer and its runway (staff only)."""
    require_staff(viewer)
    return CostsToday(
        fee_payer=_payer(session),
        today=_period(session, day_start(now), now + timedelta(microseconds=1)),
        spent_last_24h_lamports=_spent_last_24h(session, now),
    )


def costs(session: Session, viewer: User, now: datetime) -> Costs:
    """The costs panel and GET /api/admin/costs (staff only)."""
    require_staff(viewer)
    rent = dict(
        session.execute(
            select(ChainCost.operation_kind, func.sum(ChainCost.lamports))
            .where(ChainCost.kind == CostKind.RENT.value)
            .group_by(ChainCost.operation_kind)
        ).all()
    )
    month_ago = now - timedelta(days=30)
    mints, transactions = session.execute(
        select(func.coalesce(func.sum(MintBatch.mint_count), 0), func.count()).where(
            MintBatch.kind == OperationKind.MINT.value,
            MintBatch.fee_lamports.is_not(None),
            MintBatch.created_at >= month_ago,
        )
    ).one()
    return Costs(
        fee_payer=_payer(session),
        today=_period(session, day_start(now), now + timedelta(microseconds=1)),
        last_30_days=_period(session, month_ago, now + timedelta(microseconds=1)),
        rent_locked_lamports={kind: int(total) for kind, total in rent.items()},
        spent_last_24h_lamports=_spent_last_24h(session, now),
        mints_per_transaction=None
        if not transactions
        else (Decimal(int(mints)) / int(transactions)).quantize(CENT, ROUND_HALF_EVEN),
        hourly=_series(session, Window.ending_at(now, 86_400, 3_600)),
        daily=_series(session, Window.ending_at(now, 30 * 86_400, 86_400)),
    )
