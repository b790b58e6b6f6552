"""Admin read models: the review queue, meters and users, a page at a time with a search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from core.db.models import Meter, ReadingStatus, Role, User
from core.device_attributes import certificate_blocker
from core.views._sql import (
    contains,
    count_capped,
    require_admin,
    require_staff,
    serial_or_owner,
    usernames,
)
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


METER_COLUMNS = (
    Meter.id, Meter.serial, Meter.owner_id, Meter.status, Meter.created_at, Meter.last_seen_at,
    Meter.technology, Meter.capacity_kw, Meter.country, Meter.grid_region, Meter.latitude,
    Meter.longitude, Meter.commissioning_date,
)  # fmt: skip


def _meters_where(search: str, status: str | None) -> list[ColumnElement[bool]]:
    conditions = [serial_or_owner(search)]
    if status:
        conditions.append(Meter.status == status)
    return conditions


def meters(
    session: Session,
    viewer: User,
    *,
    search: str = "",
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MeterRow]:
    """Meters by serial whose serial or owner holds `search` (any case), of `status`;
    `limit` from `offset` (None: all)."""
    require_admin(viewer)
    return _meter_rows(session, select(*METER_COLUMNS).where(*_meters_where(search, status))
                       .order_by(Meter.serial).offset(offset).limit(limit))  # fmt: skip


def meter_row(session: Session, viewer: User, serial: str) -> MeterRow | None:
    """One meter by its exact serial (the one a picker chose)."""
    require_admin(viewer)
    rows = _meter_rows(session, select(*METER_COLUMNS).where(Meter.serial == serial))
    return rows[0] if rows else None


def _meter_rows(session: Session, statement: Select[Any]) -> list[MeterRow]:
    rows = session.execute(statement).all()
    owners = usernames(session, (row.owner_id for row in rows))
    return [MeterRow(row[0], row[1], owners[row[2]], *row[3:]) for row in rows]


def count_meters(session: Session, viewer: User, *, search: str = "",
                 status: str | None = None) -> int:  # fmt: skip
    """How many meters match, up to COUNT_CAP + 1."""
    require_admin(viewer)
    return count_capped(session, select(Meter.id).where(*_meters_where(search, status)))


def _users_where(role: Role | None, search: str) -> list[ColumnElement[bool]]:
    conditions = [contains(User.username, search)]
    if role is not None:
        conditions.append(User.role == role.value)
    return conditions


def users(
    session: Session,
    viewer: User,
    *,
    role: Role | None = None,
    search: str = "",
    enabled_only: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[UserRow]:
    """Users by username holding `search` (any case), of `role`; `limit` from `offset`."""
    require_admin(viewer)
    statement = (
        select(
            User.id, User.username, User.role, User.wallet_address, User.disabled, User.created_at
        )
        .where(*_users_where(role, search))
        .order_by(User.username)
        .offset(offset)
        .limit(limit)
    )
    if enabled_only:
        statement = statement.where(User.disabled.is_(False))
    return [UserRow(*row) for row in session.execute(statement)]


def count_users(session: Session, viewer: User, *, role: Role | None = None,
                search: str = "") -> int:  # fmt: skip
    """How many users match, up to COUNT_CAP + 1."""
    require_admin(viewer)
    return count_capped(session, select(User.id).where(*_users_where(role, search)))


def user_row(session: Session, viewer: User, username: str) -> UserRow | None:
    """One user by exact username (the one a picker chose)."""
    require_admin(viewer)
    row = session.execute(
        select(User.id, User.username, User.role, User.wallet_address, User.disabled,
               User.created_at).where(User.username == username)
    ).first()  # fmt: skip
    return None if row is None else UserRow(*row)


def any_user(session: Session) -> bool:
    """Whether anyone can log in yet (the login page says how to get a first admin)."""
    return session.scalar(select(User.id).limit(1)) is not None


def user_for_email(session: Session, email: str) -> User | None:
    """The users row an OIDC identity maps to: username equal to the email, any case."""
    if not email.strip():
        return None
    return session.scalar(select(User).where(func.lower(User.username) == email.strip().lower()))
