"""The append-only event log, written in the same transaction as the change it reports.

An event row is inserted in the caller's transaction, so it commits or rolls back
with the change. On PostgreSQL the transaction also sends one NOTIFY (delivered by the
server only at commit) carrying the highest new event id; SQLite readers poll.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from core.db.models import Event
from core.db.types import utcnow

NOTIFY_CHANNEL = "gridtokenx_events"
# Rows per INSERT page when many events are written (4 parameters each: 48 stays under
# the parameter count up to which psycopg reuses a parsed statement; one 1000-row
# statement would be parsed anew every time).
EVENT_PAGE_ROWS = 12
_PENDING_KEY = "gridtokenx_pending_events"


class EventType(StrEnum):
    METER_READING_RECEIVED = "meter_reading_received"
    METER_READING_VALIDATION_FAILED = "meter_reading_validation_failed"
    TOKENS_MINTED = "tokens_minted"
    BATCH_MINTING_COMPLETED = "batch_minting_completed"
    MINT_FAILED = "mint_failed"
    SETTINGS_CHANGED = "settings_changed"
    RECONCILE_MISMATCH = "reconcile_mismatch"
    # Beyond the contract's catalogue: operational events for staff.
    READING_REVIEWED = "reading_reviewed"
    MINT_REQUESTED = "mint_requested"
    SCHEDULER_JOB_ERROR = "scheduler_job_error"
    SCHEDULER_JOB_MISSED = "scheduler_job_missed"
    USER_CHANGED = "user_changed"
    METER_CHANGED = "meter_changed"


def publish(
    session: Session,
    event_type: EventType | str,
    payload: Mapping[str, Any],
    *,
    user_id: int | None = None,
    at: datetime | None = None,
) -> Event:
    """Write an event in the session's transaction; `user_id` is the prosumer who may see it."""
    return publish_many(session, [(event_type, payload, user_id)], at=at)[0]


def publish_many(
    session: Session,
    events: Sequence[tuple[EventType | str, Mapping[str, Any], int | None]],
    *,
    at: datetime | None = None,
) -> list[Event]:
    """Write several events with one INSERT (type, payload, user_id each), ids in order.

    A plain INSERT ... RETURNING, not the ORM unit of work: ingest writes one event
    per reading, and the ORM's bookkeeping per row cost more than the reading itself.
    The returned rows are detached copies (for their ids and messages).
    """
    if not events:
        return []
    created = at or utcnow()
    rows = [
        {
            "type": str(kind),
            "user_id": user_id,
            "payload": _jsonable(payload),
            "created_at": created,
        }
        for kind, payload, user_id in events
    ]
    statement = insert(Event).returning(Event.id, sort_by_parameter_order=True)
    ids = (
        session.execute(
            statement, rows, execution_options={"insertmanyvalues_page_size": EVENT_PAGE_ROWS}
        )
        .scalars()
        .all()
    )
    session.info.setdefault(_PENDING_KEY, []).extend(
        (event_id, row["type"]) for event_id, row in zip(ids, rows, strict=True)
    )
    return [Event(id=event_id, **row) for event_id, row in zip(ids, rows, strict=True)]


def to_message(row: Event) -> dict[str, Any]:
    """The CONTRACT's flat message: id, type, timestamp, then the event's fields."""
    return {
        "id": row.id,
        "type": row.type,
        "timestamp": row.created_at.isoformat().replace("+00:00", "Z"),
        **row.payload,
    }


def _jsonable(payload: Mapping[str, Any]) -> dict[str, Any]:
    # Decimals become strings (exact), datetimes RFC 3339; JSON never sees a float amount.
    return json.loads(json.dumps(dict(payload), default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


@sa_event.listens_for(Session, "before_commit")
def _notify_on_commit(session: Session) -> None:
    written: list[tuple[int, str]] = session.info.pop(_PENDING_KEY, [])
    if not written or session.get_bind().dialect.name != "postgresql":
        return
    message = json.dumps(
        {
            "max_id": max(event_id for event_id, _ in written),
            "types": sorted({kind for _, kind in written}),
        }
    )
    session.execute(
        text("SELECT pg_notify(:channel, :message)"),
        {"channel": NOTIFY_CHANNEL, "message": message},
    )


@sa_event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
