"""Read side of readings for the API: one reading, pages of readings, totals.

Totals are aggregated in SQL over integer micro-kWh and base units, so they are
exact on both databases. Callers pass a read-only session where they can
(core.db.engine.read_only), so SQLite readers never take the write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.db.models import Meter, MeterReading, ReadingStatus, Role, User
from core.errors import InvalidInput, NotFound
from core.rollups import DAY, measure, rollup_rows
from core.units import micro_to_kwh

MAX_PAGE_SIZE = 500
MAX_PAGE = 1_000_000  # offset at most 5e8 rows: inside every integer a database takes
MAX_READING_ID = 2**63 - 1
# Not yet minted, and still on the way to being minted (rejected readings never are).
UNMINTED_STATUSES = (
    ReadingStatus.PENDING,
    ReadingStatus.REVIEW,
    ReadingStatus.MINTING,
    ReadingStatus.FAILED,
)


@dataclass(frozen=True, slots=True)
class ReadingView:
    id: int
    meter_serial: str
    user_id: int
    wallet_address: str | None
    kwh_micro: int
    reading_timestamp: datetime
    submitted_at: datetime
    status: str
    token_base_units: int | None
    mint_tx_signature: str | None
    mint_batch_id: int | None = None
    minted_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    review_reason: str | None = None

    @property
    def kwh_amount(self) -> Decimal:
        return micro_to_kwh(self.kwh_micro)

    @property
    def minted(self) -> bool:
        return self.status == ReadingStatus.MINTED


@dataclass(frozen=True, slots=True)
class Page:
    items: list[ReadingView]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True, slots=True)
class ReadingStats:
    total_readings: int
    total_kwh_micro: int
    minted_kwh_micro: int
    unminted_kwh_micro: int
    tokens_minted: int
    by_status: dict[str, int]


def _select_views() -> Select:
    return select(
        MeterReading.id,
        Meter.serial,
        MeterReading.user_id,
        MeterReading.wallet_address,
        MeterReading.kwh_micro,
        MeterReading.reading_timestamp,
        MeterReading.submitted_at,
        MeterReading.status,
        MeterReading.token_base_units,
        MeterReading.mint_tx_signature,
        MeterReading.mint_batch_id,
        MeterReading.minted_at,
        MeterReading.attempts,
        MeterReading.next_attempt_at,
        MeterReading.last_error,
        MeterReading.review_reason,
    ).join(Meter, Meter.id == MeterReading.meter_id)


def get_reading(session: Session, reading_id: int) -> ReadingView:
    if not 1 <= reading_id <= MAX_READING_ID:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    row = session.execute(_select_views().where(MeterReading.id == reading_id)).one_or_none()
    if row is None:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    return ReadingView(*row)


def reading_for_user(session: Session, reading_id: int, user: User) -> ReadingView:
    """A reading its owner or staff may see; to anyone else it does not exist (404, not 403)."""
    reading = get_reading(session, reading_id)
    if user.role == Role.PROSUMER and reading.user_id != user.id:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    return reading


def parse_status(status: str | None) -> ReadingStatus | None:
    if status in (None, ""):
        return None
    try:
        return ReadingStatus(status)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in ReadingStatus)
        raise InvalidInput(f"status must be one of {allowed}", field="status") from exc


def _page(session: Session, statement: Select, page: int, page_size: int) -> Page:
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"page must be 1..{MAX_PAGE}", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be 1..{MAX_PAGE_SIZE}", field="page_size")
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = session.execute(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return Page([ReadingView(*row) for row in rows], total or 0, page, page_size)


def list_user_readings(
    session: Session,
    user_id: int,
    *,
    status: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """A prosumer's readings, newest reading first."""
    statement = _select_views().where(MeterReading.user_id == user_id)
    wanted = parse_status(status)
    if wanted is not None:
        statement = statement.where(MeterReading.status == wanted.value)
    statement = statement.order_by(MeterReading.reading_timestamp.desc(), MeterReading.id.desc())
    return _page(session, statement, page, page_size)


def list_unminted(
    session: Session, *, status: str | None = None, page: int = 1, page_size: int = 50
) -> Page:
    """Readings not minted yet (pending, review, minting, failed), oldest first."""
    wanted = parse_status(status)
    statuses = [wanted] if wanted is not None else list(UNMINTED_STATUSES)
    statement = (
        _select_views()
        .where(MeterReading.status.in_([s.value for s in statuses]))
        .order_by(MeterReading.id)
    )
    return _page(session, statement, page, page_size)


def reading_stats(session: Session, user_id: int | None = None) -> ReadingStats:
    """Counts and exact sums from the daily rollups (archived readings included); totals
    cover every reading that is not rejected."""
    rows = rollup_rows(DAY)
    statement = select(
        *(measure(rows, "n", (status,)) for status in ReadingStatus),
        *(measure(rows, "kwh", (status,)) for status in ReadingStatus),
        func.coalesce(func.sum(rows.c.minted_units), 0),
    )
    if user_id is not None:
        statement = statement.where(rows.c.user_id == user_id)
    *sums, units = (int(value) for value in session.execute(statement).one())
    statuses = list(ReadingStatus)
    by_status = {
        status.value: (
            sums[index],
            sums[len(statuses) + index],
            units if status == ReadingStatus.MINTED else 0,
        )
        for index, status in enumerate(statuses)
    }
    counted = {s: v for s, v in by_status.items() if s != ReadingStatus.REJECTED}
    minted = by_status[ReadingStatus.MINTED.value]
    total_micro = sum(v[1] for v in counted.values())
    return ReadingStats(
        total_readings=sum(v[0] for v in counted.values()),
        total_kwh_micro=total_micro,
        minted_kwh_micro=minted[1],
        unminted_kwh_micro=total_micro - minted[1],
        tokens_minted=minted[2],
        by_status={status: value[0] for status, value in by_status.items()},
    )
