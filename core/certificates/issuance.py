"""Issuance: each device's minted energy of a closed hour becomes one bundle of whole Wh.

`issue_due(session, now=..., auto_issue=...)` finds minted readings not yet
backing a certificate, of hours that have closed and whose readings have all
settled (none pending, in review or minting), and issues one bundle per
(device, hour), a few devices per database transaction (bulk inserts):

    total  = the device's carried rest (mWh) + the hour's energy (kwh_micro = mWh)
    wh     = total // 1000          remainder = total % 1000, carried to the next bundle
    ids    = wh consecutive Wh ids taken from certificate_sequence

Exactly once without locks held across steps: a reading is linked to its
bundle by the primary key of certificate_readings (a second link fails), the
carry row is moved by an UPDATE guarded on the bundle it last saw, and the id
range comes from one guarded UPDATE of the sequence. Whichever concurrent
issuer loses any of these rolls its whole transaction back (its id ranges
included); its readings stay free for the next cycle. A crash before the
commit leaves nothing behind.

A run reads only from the watermark (certificate_watermark): readings minted, or of an
hour closed, since the previous run (less LOOK_BACK), and moves it on, but never past an
hour it had to leave for later, so no hour is skipped and old history is not rescanned.

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

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select, true, union, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.certificates.rollup import add_daily
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateCarry,
    CertificateReading,
    CertificateSequence,
    CertificateStatus,
    CertificateWatermark,
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
DEFAULT_LIMIT = 50_000  # readings read per page
PAGES_PER_CALL = 20  # a backlog of a million readings in one call; more waits for the next
# Minting stamps minted_at a moment before its transaction commits, and processes' clocks
# differ a little: a run looks this far behind the watermark so a reading committed late is
# still seen. One seen twice is linked once (the primary key of certificate_readings).
LOOK_BACK = timedelta(minutes=15)
# Devices per transaction: a lost race undoes one transaction, which the next cycle redoes.
METERS_PER_TRANSACTION = 20


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


def _unissued(since: datetime | None) -> list[ColumnElement[bool]]:
    """What makes a reading one issuance will still read (joined with its Meter): minted,
    of a device the registry can certify, not yet backing a bundle, and within the run's
    window from the watermark (`since`, already less LOOK_BACK)."""
    complete = and_(*(getattr(Meter, name).is_not(None) for name in REQUIRED_FOR_CERTIFICATES))
    linked = exists().where(CertificateReading.reading_id == MeterReading.id)
    new = (
        true()
        if since is None
        else MeterReading.id.in_(  # driven from the two index ranges, not the whole table
            union(
                select(MeterReading.id).where(MeterReading.minted_at >= since),
                select(MeterReading.id).where(MeterReading.reading_timestamp >= hour_of(since)),
            )
        )
    )
    return [MeterReading.status == ReadingStatus.MINTED.value, new, ~linked, complete]


def awaiting_issue(session: Session, start: datetime, end: datetime) -> int:
    """Minted readings of [start, end) that issuance will still turn into certificates:
    `core.archive` must not move them out before it has."""
    seen = session.scalar(select(CertificateWatermark.since).where(CertificateWatermark.id == 1))
    since = None if seen is None else seen - LOOK_BACK
    return int(
        session.scalar(
            select(func.count())
            .select_from(MeterReading)
            .join(Meter, Meter.id == MeterReading.meter_id)
            .where(
                MeterReading.reading_timestamp >= start,
                MeterReading.reading_timestamp < end,
                *_unissued(since),
            )
        )
        or 0
    )


def _candidates(
    session: Session,
    before: datetime,
    since: datetime | None,
    limit: int,
    after: tuple[int, datetime] | None = None,
) -> list[tuple[int, ...]]:
    """Unlinked minted readings of closed hours, in (device, time) order from `after`; with
    `since`, only those minted since then or of an hour that closed since then (two index
    ranges, not the whole history)."""
    onward = (
        true()
        if after is None
        else or_(
            MeterReading.meter_id > after[0],
            and_(MeterReading.meter_id == after[0], MeterReading.reading_timestamp >= after[1]),
        )
    )
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
            .where(MeterReading.reading_timestamp < before, onward, *_unissued(since))
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
    session: Session,
    *,
    now: datetime,
    auto_issue: bool,
    limit: int = DEFAULT_LIMIT,
    pages: int = PAGES_PER_CALL,
) -> IssueReport:
    """Issue every due (device, hour) bundle, a few devices per transaction; commits.

    Reads from the watermark (less LOOK_BACK) only, in pages of `limit` readings that
    each start after the previous one (a backlog is not rescanned page after page), then
    moves the watermark to `now`, or back to the oldest hour it had to leave for later
    (still settling, or lost to another issuer), so each closed-and-minted hour is read
    until it is issued and not after. After `pages` pages it stops and the watermark
    stays: the next call goes on.
    """
    report = IssueReport()
    seen = session.scalar(select(CertificateWatermark.since).where(CertificateWatermark.id == 1))
    since = None if seen is None else seen - LOOK_BACK
    held: list[datetime] = []
    after: tuple[int, datetime] | None = None
    for _ in range(pages):
        rows = _candidates(session, hour_of(now), since, limit, after)
        session.rollback()  # end the read
        groups: dict[tuple[int, datetime], list[tuple[int, int]]] = defaultdict(list)
        for reading_id, meter_id, kwh_micro, at in rows:
            groups[(meter_id, hour_of(at))].append((reading_id, kwh_micro))
        if len(rows) < limit:
            held += _issue_groups(session, groups, now=now, auto_issue=auto_issue, report=report)
            _move_watermark(session, seen, min([now, *held]))
            return report
        if len(groups) == 1:  # one hour larger than a page: issue what was read, go on later
            _issue_groups(session, groups, now=now, auto_issue=auto_issue, report=report)
            return report
        after = next(reversed(groups))  # the last hour may be cut: the next page starts there
        groups.pop(after)
        held += _issue_groups(session, groups, now=now, auto_issue=auto_issue, report=report)
    return report


def _issue_groups(
    session: Session,
    groups: dict[tuple[int, datetime], list[tuple[int, int]]],
    *,
    now: datetime,
    auto_issue: bool,
    report: IssueReport,
) -> list[datetime]:
    """Issue the groups whose hour has settled; the hours left for later."""
    if not groups:
        return []
    hours = [hour for _, hour in groups]
    blocked = _open_hours(session, sorted({m for m, _ in groups}), min(hours), max(hours) + HOUR)
    session.rollback()
    by_meter: dict[int, list[tuple[datetime, list[tuple[int, int]]]]] = defaultdict(list)
    held = [hour for (meter_id, hour) in groups if (meter_id, hour) in blocked]
    for (meter_id, hour), readings in groups.items():
        if (meter_id, hour) not in blocked:
            by_meter[meter_id].append((hour, readings))  # in hour order: the carry follows it
    meter_ids = list(by_meter)
    for index in range(0, len(meter_ids), METERS_PER_TRANSACTION):
        chunk = {m: by_meter[m] for m in meter_ids[index : index + METERS_PER_TRANSACTION]}
        if not _issue_devices(session, chunk, now=now, auto_issue=auto_issue, report=report):
            held += [hour for hours in chunk.values() for hour, _ in hours]
    return held


def _move_watermark(session: Session, seen: datetime | None, to: datetime) -> None:
    """Guarded on the value this run read: of two concurrent issuers only one moves it, and
    from a complete view (the other's view is as old; not moving only means reading more)."""
    if to == seen:
        return
    guard = (
        CertificateWatermark.since.is_(None) if seen is None else CertificateWatermark.since == seen
    )
    session.execute(
        update(CertificateWatermark)
        .where(CertificateWatermark.id == 1, guard)
        .values(since=to)
        .execution_options(synchronize_session=False)
    )
    session.commit()


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
    session: Session, meter_id: int, seen: int | None, exists: bool, bundle_id: int, rest: int
) -> bool:
    """Set the device's carried rest, guarded on the bundle the carry pointed at."""
    if not exists:
        session.execute(
            insert(CertificateCarry).values(
                meter_id=meter_id, remainder_mwh=rest, bundle_id=bundle_id
            )
        )  # a concurrent first bundle of this device makes this fail
        return True
    guard = (
        CertificateCarry.bundle_id.is_(None) if seen is None else CertificateCarry.bundle_id == seen
    )
    moved = session.execute(
        update(CertificateCarry)
        .where(CertificateCarry.meter_id == meter_id, guard)
        .values(remainder_mwh=rest, bundle_id=bundle_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    return moved == 1


def _issue_devices(
    session: Session,
    devices: dict[int, list[tuple[datetime, list[tuple[int, int]]]]],
    *,
    now: datetime,
    auto_issue: bool,
    report: IssueReport,
) -> bool:
    """These devices' due hours as bundles and certificates, in one transaction; False
    when it lost a race (a reading linked, a carry moved, by another issuer), which rolls
    the whole transaction back: nothing of it was issued, and the next cycle retries.
    """
    try:
        meters = {
            m.id: m for m in session.scalars(select(Meter).where(Meter.id.in_(list(devices))))
        }
        owners = {
            u.id: u
            for u in session.scalars(
                select(User).where(User.id.in_({m.owner_id for m in meters.values()}))
            )
        }
        carries = {
            c.meter_id: (c.bundle_id, c.remainder_mwh)
            for c in session.execute(
                select(CertificateCarry.meter_id, CertificateCarry.bundle_id,
                       CertificateCarry.remainder_mwh)
                .where(CertificateCarry.meter_id.in_(list(devices)))
            )
        }  # fmt: skip
        planned = []  # (meter, hour, readings, energy, carried_in, split, reason)
        for meter_id, hours in devices.items():
            meter = meters[meter_id]
            carried = carries.get(meter_id, (None, 0))[1]
            for hour, readings in hours:
                energy = sum(kwh_micro for _, kwh_micro in readings)
                split = split_energy(energy, carried)
                reason = review_reason(meter, split.wh, auto_issue=auto_issue) if split.wh else None
                planned.append((meter, hour, readings, energy, carried, split, reason))
                carried = split.remainder_mwh
        total_wh = sum(item[5].wh for item in planned)
        next_id = _take_ids(session, total_wh) if total_wh else None
        bundle_rows = []
        for meter, hour, readings, energy, carried, split, reason in planned:
            first = None
            if split.wh:
                assert next_id is not None
                first, next_id = next_id, next_id + split.wh
            bundle_rows.append(
                {
                    "meter_id": meter.id, "producer_id": meter.owner_id, "hour_start": hour,
                    "readings": len(readings), "energy_mwh": energy, "carried_in_mwh": carried,
                    "wh": split.wh, "remainder_mwh": split.remainder_mwh, "first_id": first,
                    "last_id": None if first is None else first + split.wh - 1,
                    "technology": meter.technology, "capacity_kw": meter.capacity_kw,
                    "country": meter.country, "grid_region": meter.grid_region,
                    "commissioning_date": meter.commissioning_date, "review_reason": reason,
                    "created_at": now,
                }
            )  # fmt: skip
        ids = list(
            session.scalars(
                insert(CertificateBundle).returning(
                    CertificateBundle.id, sort_by_parameter_order=True
                ),
                bundle_rows,
            )
        )
        links, certificates = [], []
        last_bundle: dict[int, tuple[int, int]] = {}
        for bundle_id, row, item in zip(ids, bundle_rows, planned, strict=True):
            meter, _, readings, _, _, split, reason = item
            links += [{"reading_id": r, "bundle_id": bundle_id} for r, _ in readings]
            last_bundle[meter.id] = (bundle_id, split.remainder_mwh)
            if split.wh:
                owner = owners[meter.owner_id]
                assert owner.wallet_address
                status = CertificateStatus.REVIEW if reason else CertificateStatus.ISSUING
                certificates.append(
                    {
                        "bundle_id": bundle_id, "first_id": row["first_id"],
                        "last_id": row["last_id"], "wh": split.wh, "holder_id": owner.id,
                        "holder_wallet": owner.wallet_address, "status": status.value,
                        "attempts": 0, "created_at": now, "updated_at": now,
                    }
                )  # fmt: skip
        session.execute(insert(CertificateReading), links)
        for meter_id, (bundle_id, rest) in last_bundle.items():
            seen = carries.get(meter_id, (None, 0))[0]
            if not _move_carry(session, meter_id, seen, meter_id in carries, bundle_id, rest):
                session.rollback()
                report.lost_races += 1
                return False
        if certificates:
            session.execute(insert(Certificate), certificates)
        add_daily(
            session,
            (
                ((hour.date(), meter.technology, meter.grid_region, "issued"), split.wh)
                for meter, hour, _, _, _, split, _ in planned
            ),
        )
        session.commit()
    except IntegrityError:
        session.rollback()
        report.lost_races += 1
        log.info("another issuer took some of these readings first; retried next cycle")
        return False
    report.bundles += len(ids)
    report.wh += sum(item[5].wh for item in planned)
    report.in_review += sum(1 for item in planned if item[6])
    report.remainder_mwh += sum(rest for _, rest in last_bundle.values())
    report.bundle_ids += ids
    return True
