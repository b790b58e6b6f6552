"""The Fleet health table, a page at a time: the meters a filter selects, counted and
ordered in SQL, and only the page's meters given their readings, energy, refusals
and flags in the range.

At 100,000 meters the whole table is 100,000 rows of rollup sums and event counts:
seconds to read and more to send to a browser (docs/PERFORMANCE.md, "fleet"). A page
is 50 meters and a filter (state, flagged, serial or owner) narrows them first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.db.models import Meter, User
from core.events import EventType
from core.rollups.since import per_meter_since
from core.views._sql import count_capped, require_staff, serial_or_owner, usernames
from core.views.fleet import (
    Health,
    MeterHealth,
    by_meter,
    flagged_serials,
    health_of,
    health_sql,
    worst_first,
)


class FleetOrder(StrEnum):
    WORST = "worst first"  # silent, late, reporting, suspended; longest unseen first
    SERIAL = "serial"


@dataclass(frozen=True)
class FleetQuery:
    states: tuple[Health, ...] = ()  # none: every state
    flagged_only: bool = False  # a meter_flagged event in the range
    search: str = ""  # part of a serial or of the owner's username, any case
    order: FleetOrder = FleetOrder.WORST


def _where(query: FleetQuery, now: datetime, since: datetime) -> list[ColumnElement[bool]]:
    conditions = [serial_or_owner(query.search)]
    if query.states:
        conditions.append(health_sql(now).in_([state.value for state in query.states]))
    if query.flagged_only:
        conditions.append(Meter.serial.in_(flagged_serials(since)))
    return conditions


def count_fleet(session: Session, viewer: User, now: datetime, since: datetime,
                query: FleetQuery) -> int:  # fmt: skip
    """How many meters `query` selects, up to COUNT_CAP + 1."""
    require_staff(viewer)
    return count_capped(session, select(Meter.id).where(*_where(query, now, since)))


def fleet_page(
    session: Session,
    viewer: User,
    now: datetime,
    since: datetime,
    query: FleetQuery,
    *,
    limit: int | None = 50,
    offset: int = 0,
) -> list[MeterHealth]:
    """The `limit` meters from `offset` in `query`'s order (limit None: all of them),
    each with its readings, energy, refusals and flags since `since`."""
    require_staff(viewer)
    order: list[Any] = worst_first() if query.order == FleetOrder.WORST else [Meter.serial]
    meters = session.execute(
        select(Meter.id, Meter.serial, Meter.owner_id, Meter.status, Meter.last_seen_at)
        .where(*_where(query, now, since))
        .order_by(*order)
        .offset(offset)
        .limit(limit)
    ).all()
    owners = usernames(session, (m.owner_id for m in meters))
    # A page's meters by id; the whole fleet (limit None, the CSV) without an IN list.
    ids = None if limit is None else [m.id for m in meters]
    serials = None if limit is None else [m.serial for m in meters]
    totals = per_meter_since(session, since, ids)
    refused = by_meter(session, EventType.METER_READING_VALIDATION_FAILED, "error_code", since,
                       serials)  # fmt: skip
    flags = by_meter(session, EventType.METER_FLAGGED, "flag", since, serials)
    span = max(1, int((now - since).total_seconds()))
    rows = []
    for meter_id, serial, owner_id, status, seen in meters:
        count, kwh = totals.get(meter_id, (0, 0))
        rows.append(
            MeterHealth(
                serial=serial,
                owner=owners[owner_id],
                status=status,
                health=health_of(status, seen, now),
                last_seen_at=seen,
                readings=count,
                kwh_micro=kwh,
                cadence_secs=span // count if count else None,
                rejections=refused.get(serial, {}),
                flags=flags.get(serial, {}),
            )
        )
    return rows
