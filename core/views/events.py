"""The event and audit log, filtered in SQL; prosumers see only events about them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import Event, User
from core.events import EventType
from core.views._sql import scoped

EVENT_TYPES: tuple[str, ...] = tuple(member.value for member in EventType)


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    type: str
    created_at: datetime
    user_id: int | None
    payload: dict[str, Any]


def event_log(
    session: Session,
    viewer: User,
    *,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    text: str = "",
    limit: int = 200,
) -> list[EventRow]:
    """Newest events first; `text` matches the type or anywhere in the payload, any case."""
    statement = select(Event.id, Event.type, Event.created_at, Event.user_id, Event.payload)
    if types:
        statement = statement.where(Event.type.in_(list(types)))
    if since is not None:
        statement = statement.where(Event.created_at >= since)
    if until is not None:
        statement = statement.where(Event.created_at < until)
    needle = text.strip().lower()
    if needle:
        statement = statement.where(
            or_(
                func.lower(Event.type).contains(needle, autoescape=True),
                func.lower(cast(Event.payload, String)).contains(needle, autoescape=True),
            )
        )
    statement = scoped(statement, viewer, Event.user_id).order_by(Event.id.desc()).limit(limit)
    return [EventRow(*row) for row in session.execute(statement)]
