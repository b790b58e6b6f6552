"""The event and audit log, filtered in SQL; prosumers see only events about them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Event, User
from core.events import EventType
from core.views._sql import scoped
from core.views.filters import TableFilter

EVENT_TYPES: tuple[str, ...] = tuple(member.value for member in EventType)


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    type: str
    created_at: datetime
    user_id: int | None
    payload: dict[str, Any]


def events_statement(viewer: User, flt: TableFilter) -> Select[Any]:
    """EventRow's columns for the events `flt` selects, unordered (the page and the export).

    `text` matches the type or anywhere in the payload, any case; `meter` is the
    payload's meter_serial; `user` is the prosumer the event is about.
    """
    statement = select(Event.id, Event.type, Event.created_at, Event.user_id, Event.payload)
    if flt.types:
        statement = statement.where(Event.type.in_(list(flt.types)))
    if flt.since is not None:
        statement = statement.where(Event.created_at >= flt.since)
    if flt.until is not None:
        statement = statement.where(Event.created_at < flt.until)
    needle = flt.text.strip().lower()
    if needle:
        statement = statement.where(
            or_(
                func.lower(Event.type).contains(needle, autoescape=True),
                func.lower(cast(Event.payload, String)).contains(needle, autoescape=True),
            )
        )
    if flt.meter:
        statement = statement.where(Event.payload["meter_serial"].as_string() == flt.meter)
    if flt.user:
        owner = select(User.id).where(User.username == flt.user).scalar_subquery()
        statement = statement.where(Event.user_id == owner)
    return scoped(statement, viewer, Event.user_id)


def event_log(
    session: Session,
    viewer: User,
    *,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    text: str = "",
    meter: str = "",
    user: str = "",
    limit: int = 200,
) -> list[EventRow]:
    """Newest events first (see events_statement for what each filter matches)."""
    flt = TableFilter(
        since=since, until=until, types=tuple(types), text=text, meter=meter, user=user
    )
    return filtered_events(session, viewer, flt, limit=limit)


def filtered_events(
    session: Session, viewer: User, flt: TableFilter, *, limit: int = 200
) -> list[EventRow]:
    """The newest `limit` events `flt` selects: the rows the Events page shows."""
    statement = events_statement(viewer, flt).order_by(Event.id.desc()).limit(limit)
    return [EventRow(*row) for row in session.execute(statement)]


def newest_event_id(session: Session, viewer: User) -> int:
    """The newest event id the viewer may see (0 for none): one index lookup, so a page
    can ask every couple of seconds whether anything changed."""
    statement = scoped(select(func.max(Event.id)), viewer, Event.user_id)
    return int(session.scalar(statement) or 0)
