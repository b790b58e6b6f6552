"""Admin read models: the review queue, meters and users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.db.models import Meter, ReadingStatus, Role, User
from core.device_attributes import certificate_blocker
from core.views._sql import require_admin, require_staff
from core.views.readings import ReadingRow, count_by_status, latest_readings


@dataclass(frozen=True, slots=True)
class MeterRow:
    id: int
    serial: str
    owner: str
    status: str
    created_at: datetime
    last_seen_at: datetime | None
    technology: str | None = None
    capacity_kw: Decimal | None = None
    country: str | None = None
    grid_region: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    commissioning_date: date | None = None

    @property
    def certificates_blocked(self) -> str | None:
        """Why this meter cannot issue certificates yet (None: it can)."""
        return certificate_blocker(self)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    role: str
    wallet_address: str | None
    disabled: bool
    created_at: datetime


def review_queue(
    session: Session, viewer: User, *, limit: int = 200
) -> tuple[int, list[ReadingRow]]:
    """How many readings wait in review, and the newest `limit` of them."""
    require_admin(viewer)
    return (
        count_by_status(session, viewer, ReadingStatus.REVIEW),
        latest_readings(session, viewer, limit=limit, status=ReadingStatus.REVIEW),
    )


def failed_readings(
    session: Session, viewer: User, *, limit: int = 200
) -> tuple[int, list[ReadingRow]]:
    """Readings out of retries, with their last error; staff see them, admins retry them."""
    require_staff(viewer)
    return (
        count_by_status(session, viewer, ReadingStatus.FAILED),
        latest_readings(session, viewer, limit=limit, status=ReadingStatus.FAILED),
    )


def meters(session: Session, viewer: User) -> list[MeterRow]:
    require_admin(viewer)
    owner = aliased(User)
    rows = session.execute(
        select(
            Meter.id, Meter.serial, owner.username, Meter.status, Meter.created_at,
            Meter.last_seen_at, Meter.technology, Meter.capacity_kw, Meter.country,
            Meter.grid_region, Meter.latitude, Meter.longitude, Meter.commissioning_date,
        )
        .join(owner, owner.id == Meter.owner_id)
        .order_by(Meter.serial)
    )  # fmt: skip
    return [MeterRow(*row) for row in rows]


def users(session: Session, viewer: User, *, role: Role | None = None) -> list[UserRow]:
    require_admin(viewer)
    statement = select(
        User.id, User.username, User.role, User.wallet_address, User.disabled, User.created_at
    ).order_by(User.username)
    if role is not None:
        statement = statement.where(User.role == role.value)
    return [UserRow(*row) for row in session.execute(statement)]


def any_user(session: Session) -> bool:
    """Whether anyone can log in yet (the login page says how to get a first admin)."""
    return session.scalar(select(User.id).limit(1)) is not None


def user_for_email(session: Session, email: str) -> User | None:
    """The users row an OIDC identity maps to: username equal to the email, any case."""
    if not email.strip():
        return None
    return session.scalar(select(User).where(func.lower(User.username) == email.strip().lower()))
