"""Certificate read models: the registry list with filters, one certificate's history,
the claims report and the per-day totals by technology and region.

A prosumer sees the certificates they hold; staff see all (the filter is in the
query). Wh are integers throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateDaily,
    CertificateOperation,
    CertificateStatus,
    Meter,
    MintBatch,
    User,
)
from core.views._sql import is_staff, require_staff

LIVE = (
    CertificateStatus.ISSUING.value,
    CertificateStatus.ACTIVE.value,
    CertificateStatus.TRANSFERRING.value,
    CertificateStatus.RETIRING.value,
    CertificateStatus.CANCELLING.value,
)


@dataclass(frozen=True, slots=True)
class CertificateRow:
    id: int
    bundle_id: int
    first_id: int
    last_id: int
    wh: int
    status: str
    holder: str
    holder_wallet: str
    meter_serial: str
    hour_start: datetime
    technology: str
    capacity_kw: Decimal
    country: str
    grid_region: str
    commissioning_date: date
    issue_signature: str | None
    beneficiary: str | None
    purpose: str | None
    period_start: date | None
    period_end: date | None
    claim_country: str | None
    cancel_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    latitude: Decimal | None = None
    longitude: Decimal | None = None


@dataclass(frozen=True)
class CertificateFilter:
    meter_serial: str | None = None
    hour_from: datetime | None = None
    hour_to: datetime | None = None  # exclusive
    technology: str | None = None
    grid_region: str | None = None
    status: str | None = None
    holder: str | None = None
    include_split: bool = False  # split parents are history, not holdings
    holder_id: int | None = None  # the holder by id (certificates() resolves `holder` to it)


@dataclass(frozen=True, slots=True)
class OperationRow:
    operation_id: int
    action: str
    status: str
    signature: str | None
    slot: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass
class CertificateHistory:
    certificate: CertificateRow
    ancestors: list[int] = field(default_factory=list)  # parent first, the bundle's root last
    operations: list[OperationRow] = field(default_factory=list)  # its own and its ancestors'


def _base(viewer: User) -> Select:
    holder = aliased(User)
    statement = (
        select(
            Certificate.id, Certificate.bundle_id, Certificate.first_id, Certificate.last_id,
            Certificate.wh, Certificate.status, holder.username, Certificate.holder_wallet,
            Meter.serial, CertificateBundle.hour_start, CertificateBundle.technology,
            CertificateBundle.capacity_kw, CertificateBundle.country,
            CertificateBundle.grid_region, CertificateBundle.commissioning_date,
            Certificate.issue_signature, Certificate.beneficiary, Certificate.purpose,
            Certificate.period_start, Certificate.period_end, Certificate.claim_country,
            Certificate.cancel_reason, Certificate.created_at, Certificate.finished_at,
            Meter.latitude, Meter.longitude,
        )
        .join(CertificateBundle, CertificateBundle.id == Certificate.bundle_id)
        .join(Meter, Meter.id == CertificateBundle.meter_id)
        .join(holder, holder.id == Certificate.holder_id)
    )  # fmt: skip
    if not is_staff(viewer):
        statement = statement.where(Certificate.holder_id == viewer.id)
    return statement


def _filtered(statement: Select, wanted: CertificateFilter) -> Select:
    if wanted.meter_serial:
        statement = statement.where(Meter.serial == wanted.meter_serial)
    if wanted.hour_from:
        statement = statement.where(CertificateBundle.hour_start >= wanted.hour_from)
    if wanted.hour_to:
        statement = statement.where(CertificateBundle.hour_start < wanted.hour_to)
    if wanted.technology:
        statement = statement.where(CertificateBundle.technology == wanted.technology)
    if wanted.grid_region:
        statement = statement.where(CertificateBundle.grid_region == wanted.grid_region.upper())
    if wanted.status:
        statement = statement.where(Certificate.status == wanted.status)
    elif not wanted.include_split:
        statement = statement.where(Certificate.status != CertificateStatus.SPLIT.value)
    if wanted.holder_id is not None:
        statement = statement.where(Certificate.holder_id == wanted.holder_id)
    elif wanted.holder:
        holder_id = select(User.id).where(User.username == wanted.holder).scalar_subquery()
        statement = statement.where(Certificate.holder_id == holder_id)
    return statement


def certificates_statement(viewer: User, wanted: CertificateFilter) -> Select:
    """The registry's rows as the viewer may see them, filtered (first column: the id)."""
    return _filtered(_base(viewer), wanted)


def count_statement(viewer: User, wanted: CertificateFilter, cap: int | None = None) -> Select:
    """How many certificates the viewer may see match, stopping at `cap + 1` if given."""
    counting = _matching_ids(viewer, wanted)
    if cap is not None:
        counting = counting.limit(cap + 1)
    return select(func.count()).select_from(counting.subquery())


def _needs_device(wanted: CertificateFilter) -> bool:
    """Whether the filter reads the bundle or the meter (the others are the certificate's)."""
    return bool(
        wanted.meter_serial
        or wanted.hour_from
        or wanted.hour_to
        or wanted.technology
        or wanted.grid_region
    )


def _matching_ids(viewer: User, wanted: CertificateFilter) -> Select:
    """The ids of the certificates the viewer may see that match, joining only what the
    filter reads."""
    ids = select(Certificate.id)
    if _needs_device(wanted):
        ids = ids.join(CertificateBundle, CertificateBundle.id == Certificate.bundle_id).join(
            Meter, Meter.id == CertificateBundle.meter_id
        )
    if not is_staff(viewer):
        ids = ids.where(Certificate.holder_id == viewer.id)
    return _filtered(ids, wanted)


def page_statement(viewer: User, wanted: CertificateFilter, limit: int, offset: int) -> Select:
    """One page of the registry, newest first.

    When the filter reads only the certificate's own columns (status, holder), the
    page's ids are taken first from certificates alone, then joined: PostgreSQL can
    then read them index-only from (holder_id, status, id) or (status, id), newest
    first, stopping at the page. Written as one join ordered by id with a LIMIT, it
    walked the whole primary key backwards for a holder with none of a status
    (about 1 s at 1,000,000 certificates; the heap fetches an index scan needs made
    the walk look cheaper).
    """
    if _needs_device(wanted):
        statement = certificates_statement(viewer, wanted)
        return statement.order_by(Certificate.id.desc()).limit(limit).offset(offset)
    ids = _matching_ids(viewer, wanted).order_by(Certificate.id.desc()).limit(limit)
    return (
        _base(viewer).where(Certificate.id.in_(ids.offset(offset))).order_by(Certificate.id.desc())
    )


def certificates(
    session: Session,
    viewer: User,
    wanted: CertificateFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    count_cap: int | None = None,
) -> tuple[list[CertificateRow], int]:
    """One page of certificates (newest first) and how many match.

    With `count_cap` the count stops at `count_cap + 1` ("more than count_cap"): a
    pager's row count needs no exact figure beyond it, and counting a holder's
    hundred thousand certificates to show one page took seconds at 1,000,000.
    """
    wanted = wanted or CertificateFilter()
    if wanted.holder and wanted.holder_id is None:
        # By id, not by a subquery on the name: PostgreSQL plans a subquery's result
        # as an unknown holder (a tenth of the rows here) and, for a holder with no
        # certificates, walked the whole primary key backwards (0.6-0.9 s at
        # 1,000,000); with the id its statistics know the holder's share.
        holder_id = session.scalar(select(User.id).where(User.username == wanted.holder))
        if holder_id is None:
            return [], 0
        wanted = replace(wanted, holder_id=holder_id)
    total = session.scalar(count_statement(viewer, wanted, count_cap))
    rows = session.execute(page_statement(viewer, wanted, limit, offset))
    return [CertificateRow(*row) for row in rows], int(total or 0)


def certificate_history(
    session: Session, viewer: User, certificate_id: int
) -> CertificateHistory | None:
    """The certificate, the certificates it was split from, and every chain operation."""
    row = session.execute(_base(viewer).where(Certificate.id == certificate_id)).first()
    if row is None:
        return None
    history = CertificateHistory(CertificateRow(*row))
    lineage = [certificate_id]
    parent = session.scalar(select(Certificate.parent_id).where(Certificate.id == certificate_id))
    while parent is not None:
        history.ancestors.append(parent)
        lineage.append(parent)
        parent = session.scalar(select(Certificate.parent_id).where(Certificate.id == parent))
    operations = session.execute(
        select(
            MintBatch.id, CertificateOperation.action, MintBatch.status, MintBatch.signature,
            MintBatch.slot, MintBatch.error, MintBatch.created_at, MintBatch.finished_at,
        )
        .join(MintBatch, MintBatch.id == CertificateOperation.operation_id)
        .where(CertificateOperation.certificate_id.in_(lineage))
        .order_by(MintBatch.id)
    )  # fmt: skip
    history.operations = [OperationRow(*op) for op in operations]
    return history


@dataclass(frozen=True, slots=True)
class ClaimRow:
    beneficiary: str
    purpose: str
    country: str
    period_start: date
    period_end: date
    certificates: int
    wh: int


def claims_report(
    session: Session, viewer: User, *, since: datetime | None = None
) -> list[ClaimRow]:
    """Retired Wh by beneficiary, purpose, country and consumption period (own for a prosumer)."""
    statement = select(
        Certificate.beneficiary, Certificate.purpose, Certificate.claim_country,
        Certificate.period_start, Certificate.period_end, func.count(), func.sum(Certificate.wh),
    ).where(Certificate.status == CertificateStatus.RETIRED.value)  # fmt: skip
    if not is_staff(viewer):
        statement = statement.where(Certificate.holder_id == viewer.id)
    if since is not None:
        statement = statement.where(Certificate.finished_at >= since)
    grouped = statement.group_by(
        Certificate.beneficiary, Certificate.purpose, Certificate.claim_country,
        Certificate.period_start, Certificate.period_end,
    ).order_by(Certificate.period_start, Certificate.beneficiary)  # fmt: skip
    return [ClaimRow(*row[:5], int(row[5]), int(row[6])) for row in session.execute(grouped)]


@dataclass(frozen=True, slots=True)
class DailyTotal:
    day_start: int  # epoch seconds of the UTC day
    technology: str
    grid_region: str
    status: str  # issued (every Wh ever issued), retired or cancelled
    wh: int


def daily_totals(session: Session, viewer: User, *, since: datetime) -> list[DailyTotal]:
    """Wh issued, retired and cancelled per UTC day, technology and region (staff).

    Read from certificate_daily, kept by issuance and settlement: a few rows a day
    whatever the number of certificates.
    """
    require_staff(viewer)
    rows = session.execute(
        select(
            CertificateDaily.day, CertificateDaily.technology, CertificateDaily.grid_region,
            CertificateDaily.status, CertificateDaily.wh,
        ).where(CertificateDaily.day >= since.date())
    )  # fmt: skip
    totals = [
        DailyTotal(
            int(datetime.combine(day, time(), tzinfo=UTC).timestamp()), tech, region, status, wh
        )
        for day, tech, region, status, wh in rows
    ]
    return sorted(totals, key=lambda row: (row.day_start, row.status, row.technology))


def live_wh(session: Session) -> int:
    """Wh of certificates minted and not burned as the database sees them (staff figure)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Certificate.wh), 0)).where(Certificate.status.in_(LIVE))
        )
    )
