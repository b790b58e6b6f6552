"""A prosumer's wallet: what the database says they were minted, per day and per mint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading, ReadingStatus, User
from core.errors import Forbidden, NotFound
from core.rollups import DAY, accepted, level_for, measure, regroup, rollup_rows
from core.views._sql import Window, epoch_of, from_epoch, is_staff

RECENT_MINTED = 1000  # mints are listed from this many newest minted readings


@dataclass(frozen=True, slots=True)
class WalletTotals:
    user_id: int
    username: str
    wallet_address: str | None
    readings: int
    kwh_micro: int
    minted_readings: int
    minted_base_units: int  # every mint to this user, whatever the wallet was then
    minted_to_wallet: int  # minted to the current wallet: what its balance should hold
    waiting_readings: int  # accepted, not yet minted (pending, review, minting, failed)


@dataclass(frozen=True, slots=True)
class DayPoint:
    day: datetime
    kwh_micro: int
    minted_base_units: int


@dataclass(frozen=True, slots=True)
class MintRow:
    signature: str
    minted_at: datetime
    readings: int
    kwh_micro: int
    base_units: int


def _owner(session: Session, viewer: User, user_id: int | None) -> User:
    """A prosumer may only look at their own wallet; staff may look at anyone's."""
    target = viewer.id if user_id is None else user_id
    if target != viewer.id and not is_staff(viewer):
        raise Forbidden("you can only see your own wallet")
    user = viewer if target == viewer.id else session.get(User, target)
    if user is None:
        raise NotFound(f"user {target} does not exist", field="user_id")
    return user


def wallet_totals(session: Session, viewer: User, user_id: int | None = None) -> WalletTotals:
    owner = _owner(session, viewer, user_id)
    rows = rollup_rows(DAY)
    found = session.execute(
        select(
            rows.c.wallet,
            accepted(rows, "n"),
            accepted(rows, "kwh"),
            measure(rows, "n", (ReadingStatus.MINTED,)),
            func.coalesce(func.sum(rows.c.minted_units), 0),
        )
        .where(rows.c.user_id == owner.id)
        .group_by(rows.c.wallet)
    ).all()
    readings = kwh = minted_readings = minted = to_wallet = 0
    for wallet, count, kwh_micro, minted_count, units in found:
        readings += int(count)
        kwh += int(kwh_micro)
        minted_readings += int(minted_count)
        minted += int(units)
        if (wallet or None) == owner.wallet_address:  # the rollups key "no wallet" as ''
            to_wallet += int(units)
    return WalletTotals(
        owner.id, owner.username, owner.wallet_address, readings, kwh, minted_readings,
        minted, to_wallet, readings - minted_readings,
    )  # fmt: skip


def daily_production(
    session: Session, viewer: User, window: Window, user_id: int | None = None
) -> list[DayPoint]:
    """kWh produced (by reading time) and GRX minted from it, per day of the window."""
    owner = _owner(session, viewer, user_id)
    rows = rollup_rows(level_for(window.bucket_secs))
    day = regroup(rows, window.bucket_secs).label("day")
    found = {
        int(start): (int(kwh), int(units))
        for start, kwh, units in session.execute(
            select(day, accepted(rows, "kwh"), func.coalesce(func.sum(rows.c.minted_units), 0))
            .where(
                rows.c.user_id == owner.id,
                rows.c.bucket >= epoch_of(window.since),
                rows.c.bucket < epoch_of(window.until),
            )
            .group_by(day)
        )
    }
    return [DayPoint(from_epoch(start), *found.get(start, (0, 0))) for start in window.starts()]


def recent_mints(
    session: Session, viewer: User, *, limit: int = 50, user_id: int | None = None
) -> list[MintRow]:
    """The owner's newest mint transactions with what each carried for them."""
    owner = _owner(session, viewer, user_id)
    # Newest minted readings first (bounded), then grouped by transaction: the group-by
    # never runs over a prosumer's whole history.
    recent = (
        select(MeterReading)
        .where(
            MeterReading.user_id == owner.id,
            MeterReading.mint_tx_signature.is_not(None),
            MeterReading.status == ReadingStatus.MINTED.value,
        )
        .order_by(MeterReading.id.desc())
        .limit(RECENT_MINTED)
        .subquery()
    )
    rows = session.execute(
        select(
            recent.c.mint_tx_signature,
            func.max(recent.c.minted_at),
            func.count(),
            func.sum(recent.c.kwh_micro),
            func.sum(recent.c.token_base_units),
        )
        .group_by(recent.c.mint_tx_signature)
        .order_by(func.max(recent.c.minted_at).desc())
        .limit(limit)
    ).all()
    return [MintRow(sig, at, int(n), int(kwh), int(units or 0)) for sig, at, n, kwh, units in rows]
