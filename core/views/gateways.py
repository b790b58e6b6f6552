"""Gateways for the admin page, a page at a time: each with how many meters it holds,
and one gateway's meters by search. A gateway of a fleet holds about 1,000 meters;
listing every serial of every gateway is the whole fleet again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Gateway, GatewayMeter, Meter, User
from core.views._sql import contains, require_admin


@dataclass(frozen=True, slots=True)
class GatewayRow:
    name: str
    status: str
    meters: int
    created_by: str
    created_at: datetime
    last_seen_at: datetime | None


def gateways(
    session: Session,
    viewer: User,
    *,
    search: str = "",
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[GatewayRow]:
    """Gateways by name holding `search` (any case), of `status`, with their meter counts."""
    require_admin(viewer)
    held = (
        select(func.count())
        .where(GatewayMeter.gateway_id == Gateway.id)
        .correlate(Gateway)
        .scalar_subquery()
    )
    statement = (
        select(Gateway.name, Gateway.status, held, Gateway.created_by, Gateway.created_at,
               Gateway.last_seen_at)
        .where(contains(Gateway.name, search))
        .order_by(Gateway.name)
        .offset(offset)
        .limit(limit)
    )  # fmt: skip
    if status:
        statement = statement.where(Gateway.status == status)
    return [GatewayRow(*row) for row in session.execute(statement)]


def count_gateways(session: Session, viewer: User, *, search: str = "") -> int:
    require_admin(viewer)
    statement = select(func.count(Gateway.id)).where(contains(Gateway.name, search))
    return int(session.scalar(statement) or 0)


def gateway_serials(
    session: Session, viewer: User, name: str, *, search: str = "", limit: int | None = None
) -> list[str]:
    """The serials of gateway `name`'s meters holding `search`, in order."""
    require_admin(viewer)
    return list(
        session.scalars(
            select(Meter.serial)
            .join(GatewayMeter, GatewayMeter.meter_id == Meter.id)
            .join(Gateway, Gateway.id == GatewayMeter.gateway_id)
            .where(Gateway.name == name, contains(Meter.serial, search))
            .order_by(Meter.serial)
            .limit(limit)
        )
    )
