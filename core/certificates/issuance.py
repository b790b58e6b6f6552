"""Issuance: each device's minted energy of a closed hour becomes one bundle of whole Wh.

`issue_due(session, now=..., auto_issue=...)` finds minted readings not yet
backing a certificate, of hours that have closed and whose readings have all
settled (none pending, in review or minting), and issues one bundle per
(device, hour), each in its own database transaction:

    total  = the device's carried rest (mWh) + the hour's energy (kwh_micro = mWh)
    wh     = total // 1000          remainder = total % 1000, carried to the next bundle
    ids    = wh consecutive Wh ids taken from certificate_sequence

Exactly once without locks held across steps: a reading is linked to its
bundle by the primary key of certificate_readings (a second link fails), the
carry row is moved by an UPDATE guarded on the bundle it last saw, and the id
range comes from one guarded UPDATE of the sequence. Whichever concurrent
issuer loses any of these rolls back everything it did; its readings stay
free for the next cycle. A crash before the commit leaves nothing behind.

A bundle waits in review (certificate status `review`) when auto-issue is off,
when the device is suspended, or when its Wh exceed what the rated capacity can
produce in one hour; an admin approves it (`approve_bundle`) or rejects it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateCarry,
    CertificateReading,
    CertificateSequence,
    CertificateStatus,
    Meter,
    MeterReading,
    MeterStatus,
    ReadingStatus,
    User,
)
from core.device_attributes import REQUIRED_FOR_CERTIFICATES

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
MWH_PER_WH = 1000  # kwh_micro is milli-Wh
OPEN_STATUSES = (
    ReadingStatus.PENDING.value,
    ReadingStatus.REVIEW.value,
    ReadingStatus.MINTING.value,
)
DEFAULT_LIMIT = 5000  # readings looked at per call


@dataclass(frozen=True)
class Split:
    wh: int
    remainder_mwh: int


@dataclass
class IssueReport:
    bundles: int = 0
    wh: int = 0
    in_review: int = 0
    remainder_mwh: int = 0  # carried to the devices' next bundles
    lost_races: int = 0  # another issuer took the readings or the carry first
    bundle_ids: list[int] = field(default_factory=list)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def split_energy(energy_mwh: int, carried_in_mwh: int) -> Split:
    """Whole Wh (floored) and the rest, from exact integers only."""
    if energy_mwh < 0 or not 0 <= carried_in_mwh < MWH_PER_WH:
        raise ValueError("energy is non-negative and a carried rest is below 1 Wh")
    wh, rest = divmod(energy_mwh + carried_in_mwh, MWH_PER_WH)
    return Split(wh, rest)


def review_reason(meter: Meter, wh: int, *, auto_issue: bool) -> str | None:
    """Why a bundle waits for an admin, or None when it is issued at once."""
    if meter.status == MeterStatus.SUSPENDED.value:
        return "the device is suspended"
    assert meter.capacity_kw is not None  # checked before issuing
    most = int(Decimal(meter.capacity_kw) * MWH_PER_WH)  # Wh in one hour at rated capacity
    if wh > most:
        return f"{wh} Wh exceeds the {most} Wh the rated capacity can produce in one hour"
    if not auto_issue:
        return "awaiting approval (CERTIFICATES_AUTO_ISSUE is off)"
    return None


def _candidates(session: Session, before: datetime, limit: int) -> list[tuple[int, ...]]:
    complete = and_(*(getattr(Meter, name).is_not(None) for name in REQUIRED_FOR_CERTIFICATES))
    linked = exists().where(CertificateReading.reading_id == MeterReading.id)
    return [
        tuple(row)
        for row in session.execute(
            select(
                MeterReading.id,
                MeterReading.meter_id,
                MeterReading.kwh_micro,
                MeterReading.reading_timestamp,
            )
            .join(Meter, Meter.id == MeterReading.meter_id)
            .where(
                MeterReading.status == ReadingStatus.MINTED.value,
                MeterReading.reading_timestamp < before,
                ~linked,
                complete,
            )
            .order_by(MeterReading.meter_id, MeterReading.reading_timestamp, MeterReading.id)
            .limit(limit)
        )
    ]


def _open_hours(session: Session, meter_ids: list[int], start: datetime, end: datetime) -> set:
    """(meter, hour) pairs that still have a reading on its way to being minted."""
    rows = session.execute(
        select(MeterReading.meter_id, MeterReading.reading_timestamp).where(
            MeterReading.meter_id.in_(meter_ids),
            MeterReading.status.in_(OPEN_STATUSES),
            MeterReading.reading_timestamp >= start,
            MeterReading.reading_timestamp < end,
        )
    )
    return {(meter_id, hour_of(at)) for meter_id, at in rows}


def issue_due(
    session: Session, *, now: datetime, auto_issue: bool, limit: int = DEFAULT_LIMIT
) -> IssueReport:
    """Issue every due (device, hour) bundle; one commit per bundle."""
    report = IssueReport()
    rows = _candidates(session, hour_of(now), limit)
    session.rollback()  # end the read: each bundle is its own transaction
    if not rows:
        return report
    groups: dict[tuple[int, datetime], list[tuple[int, int]]] = defaultdict(list)
    for reading_id, meter_id, kwh_micro, at in rows:
        groups[(meter_id, hour_of(at))].append((reading_id, kwh_micro))
    if len(rows) == limit and len(groups) > 1:
        groups.pop(next(reversed(groups)))  # the last hour may be cut by the limit
    hours = [hour for _, hour in groups]
    blocked = _open_hours(session, sorted({m for m, _ in groups}), min(hours), max(hours) + HOUR)
    session.rollback()
    for (meter_id, hour), readings in groups.items():
        if (meter_id, hour) in blocked:
            continue
        issued = _issue_bundle(session, meter_id, hour, readings, now=now, auto_issue=auto_issue)
        if issued is None:
            report.lost_races += 1
            continue
        bundle, in_review = issued
        report.bundles += 1
        report.wh += bundle.wh
        report.in_review += int(in_review)
        report.remainder_mwh += bundle.remainder_mwh
        report.bundle_ids.append(bundle.id)
    return report


def _take_ids(session: Session, wh: int) -> int:
    """The first of `wh` fresh consecutive ids (the row lock serialises concurrent issuers)."""
    next_id = session.scalar(
        update(CertificateSequence)
        .where(CertificateSequence.id == 1)
        .values(next_id=CertificateSequence.next_id + wh)
        .returning(CertificateSequence.next_id)
    )
    assert next_id is not None, "certificate_sequence has no row: run the migrations"
    return int(next_id) - wh


def _move_carry(
    session: Session, meter_id: int, carry: CertificateCarry | None, bundle_id: int, rest: int
) -> bool:
    if carry is None:
        session.execute(
            insert(CertificateCarry).values(
                meter_id=meter_id, remainder_mwh=rest, bundle_id=bundle_id
            )
        )  # a concurrent first bundle of this device makes this fail
        return True
    seen = carry.bundle_id
    guard = (
        CertificateCarry.bundle_id.is_(None) if seen is None else CertificateCarry.bundle_id == seen
    )
    moved = session.execute(
        update(CertificateCarry)
        .where(CertificateCarry.meter_id == meter_id, guard)
        .values(remainder_mwh=rest, bundle_id=bundle_id)
    ).rowcount
    return moved == 1


def _issue_bundle(
    session: Session,
    meter_id: int,
    hour: datetime,
    readings: list[tuple[int, int]],
    *,
    now: datetime,
    auto_issue: bool,
) -> tuple[CertificateBundle, bool] | None:
    """One bundle and its certificate, committed; None when another issuer won a race."""
    try:
        meter = session.get(Meter, meter_id)
        assert meter is not None
        owner = session.get(User, meter.owner_id)
        assert owner is not None
        carry = session.get(CertificateCarry, meter_id)
        carried_in = carry.remainder_mwh if carry is not None else 0
        energy = sum(kwh_micro for _, kwh_micro in readings)
        split = split_energy(energy, carried_in)
        first = _take_ids(session, split.wh) if split.wh else None
        reason = review_reason(meter, split.wh, auto_issue=auto_issue) if split.wh else None
        bundle = CertificateBundle(
            meter_id=meter_id,
            producer_id=meter.owner_id,
            hour_start=hour,
            readings=len(readings),
            energy_mwh=energy,
            carried_in_mwh=carried_in,
            wh=split.wh,
            remainder_mwh=split.remainder_mwh,
            first_id=first,
            last_id=None if first is None else first + split.wh - 1,
            technology=meter.technology,
            capacity_kw=meter.capacity_kw,
            country=meter.country,
            grid_region=meter.grid_region,
            commissioning_date=meter.commissioning_date,
            review_reason=reason,
            created_at=now,
        )
        session.add(bundle)
        session.flush()
        session.execute(
            insert(CertificateReading),
            [{"reading_id": reading_id, "bundle_id": bundle.id} for reading_id, _ in readings],
        )
        if not _move_carry(session, meter_id, carry, bundle.id, split.remainder_mwh):
            session.rollback()
            return None
        if split.wh:
            assert first is not None and owner.wallet_address
            session.add(
                Certificate(
                    bundle_id=bundle.id,
                    first_id=first,
                    last_id=first + split.wh - 1,
                    wh=split.wh,
                    holder_id=owner.id,
                    holder_wallet=owner.wallet_address,
                    status=(
                        CertificateStatus.REVIEW if reason else CertificateStatus.ISSUING
                    ).value,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        log.info("meter %d hour %s: another issuer took these readings first", meter_id, hour)
        return None
    return bundle, reason is not None
