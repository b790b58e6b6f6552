"""The operator's overview: today's numbers, the queue, and what the chain should hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from core.config import AppSettings
from core.db.models import MeterReading, MintBatch, ReadingStatus, TokenMint, User
from core.minting.minted_buckets import minted_sums
from core.rollups import DAY, EVERY, measure, rollup_rows
from core.views._sql import day_start, epoch_of, require_staff, status_is_not


@dataclass(frozen=True, slots=True)
class Overview:
    readings_today: int
    kwh_micro_today: int
    base_units_minted_today: int
    readings_minted_today: int
    pending: int
    review: int
    minting: int
    failed: int
    open_batches: int
    last_submitted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ExpectedSupply:
    """What the GRX mint's supply must be if every mint is recorded exactly once."""

    mint_address: str
    decimals: int
    bootstrap_supply: int
    minted_base_units: int

    @property
    def expected(self) -> int:
        return self.bootstrap_supply + self.minted_base_units


def overview(session: Session, viewer: User, now: datetime) -> Overview:
    """Counts for the staff overview; today is the UTC day of `now`."""
    require_staff(viewer)
    today = day_start(now)
    # Readings of today and later (a clock ahead), from the daily rollups.
    rows = rollup_rows(DAY)
    readings, kwh = session.execute(
        select(measure(rows, "n", EVERY), measure(rows, "kwh", EVERY)).where(
            rows.c.bucket >= epoch_of(today)
        )
    ).one()
    # Minted from today on (no upper bound: ten years of whole 15-minute buckets).
    minted_count, minted_units = minted_sums(session, today, today + timedelta(days=3650))
    # Everything not yet minted is small and has its own partial index.
    open_counts = dict(
        session.execute(
            select(MeterReading.status, func.count())
            .where(status_is_not(MeterReading.status, ReadingStatus.MINTED))
            .group_by(MeterReading.status)
        ).all()
    )
    open_batches = session.scalar(
        select(func.count()).where(
            MintBatch.status.in_([literal_column("'planned'"), literal_column("'signed'")])
        )
    )
    last_submitted = session.scalar(select(func.max(MeterReading.submitted_at)))
    return Overview(
        readings_today=int(readings),
        kwh_micro_today=int(kwh),
        base_units_minted_today=int(minted_units),
        readings_minted_today=int(minted_count),
        pending=int(open_counts.get(ReadingStatus.PENDING.value, 0)),
        review=int(open_counts.get(ReadingStatus.REVIEW.value, 0)),
        minting=int(open_counts.get(ReadingStatus.MINTING.value, 0)),
        failed=int(open_counts.get(ReadingStatus.FAILED.value, 0)),
        open_batches=int(open_batches or 0),
        last_submitted_at=last_submitted,
    )


def current_token_mint(session: Session, settings: AppSettings) -> TokenMint | None:
    """The GRX mint this deployment mints to: ENERGY_TOKEN_MINT, else the one recorded
    for this RPC endpoint at bootstrap, else the newest recorded."""
    if settings.energy_token_mint:
        return session.get(TokenMint, settings.energy_token_mint)
    newest = select(TokenMint).order_by(TokenMint.created_at.desc()).limit(1)
    same_rpc = newest.where(TokenMint.rpc_url == settings.effective_rpc_url)
    return session.scalar(same_rpc) or session.scalar(newest)


def expected_supply(session: Session, viewer: User, settings: AppSettings) -> ExpectedSupply | None:
    """bootstrap supply + every minted reading's base units, those `core.archive` moved
    out of the table included (the totals audit's full sum); None before a mint exists."""
    require_staff(viewer)
    mint = current_token_mint(session, settings)
    if mint is None:
        return None
    rows = rollup_rows(DAY)  # archived readings included, as the chain counts them
    minted = session.scalar(select(func.coalesce(func.sum(rows.c.minted_units), 0)))
    return ExpectedSupply(
        mint_address=mint.address,
        decimals=mint.decimals,
        bootstrap_supply=int(mint.bootstrap_supply),
        minted_base_units=int(minted or 0),
    )
