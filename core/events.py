"""The append-only event log, written in the same transaction as the change it reports.

An event row is inserted in the caller's transaction, so it commits or rolls back
with the change. On PostgreSQL a statement trigger on `events` (migration 0003) sends a NOTIFY
with the highest new id and the types, which the server delivers only at commit;
SQLite readers poll.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from core.db.models import Event
from core.db.types import utcnow

NOTIFY_CHANNEL = "gridtokenx_events"
# Rows per INSERT page when many events are written (4 parameters each: 48 stays under
# the parameter count up to which psycopg reuses a parsed statement; one 1000-row
# statement would be parsed anew every time).
EVENT_PAGE_ROWS = 12


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
    GATEWAY_CHANGED = "gateway_changed"
    METER_FLAGGED = "meter_flagged"
    FEE_PAYER_LOW = "fee_payer_low"
    SIGNER_UNAVAILABLE = "signer_unavailable"
    MINT_AUTHORITY_CHANGED = "mint_authority_changed"
    CERTIFICATE_ISSUED = "certificate_issued"
    CERTIFICATE_TRANSFERRED = "certificate_transferred"
    CERTIFICATE_RETIRED = "certificate_retired"
    CERTIFICATE_CANCELLED = "certificate_cancelled"


@dataclass(frozen=True)
class PublishedEvent:
    """An event just written: what `to_message` and callers need, without an ORM row."""

    id: int
    type: str
    user_id: int | None
    payload: dict[str, Any]
    created_at: datetime


def publish(
    session: Session,
    event_type: EventType | str,
    payload: Mapping[str, Any],
    *,
    user_id: int | None = None,
    at: datetime | None = None,
) -> PublishedEvent:
    """Write an event in the session's transaction; `user_id` is the prosumer who may see it."""
    return publish_many(session, [(event_type, payload, user_id)], at=at)[0]


def publish_many(
    session: Session,
    events: Sequence[tuple[EventType | str, Mapping[str, Any], int | None]],
    *,
    at: datetime | None = None,
) -> list[PublishedEvent]:
    """Write several events with one INSERT (type, payload, user_id each), ids in order.

    A Core INSERT ... RETURNING on the table, not the ORM: ingest writes one event per
    reading, and the ORM's bookkeeping per row cost more than the reading itself.
    """
    if not events:
        return []
    created = at or utcnow()
    rows = [
        {
            "type": str(kind),
            "user_id": user_id,
            "payload": {str(key): _plain(value) for key, value in payload.items()},
            "created_at": created,
        }
        for kind, payload, user_id in events
    ]
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        ids = _insert_unnest(session, rows, created)
    else:
        table = Event.__table__
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        options = {"insertmanyvalues_page_size": EVENT_PAGE_ROWS}
        ids = session.execute(statement, rows, execution_options=options).scalars().all()
    return [PublishedEvent(event_id, **row) for event_id, row in zip(ids, rows, strict=True)]


# The payloads as one JSON array text, not a JSON[] parameter: psycopg writes an array
# parameter element by element, escaping every quote of every payload with a regular
# expression, which cost more CPU than the rest of the insert (cProfile of ingest).
_INSERT_UNNEST = text(
    "INSERT INTO events (type, user_id, payload, created_at)"
    " SELECT e.type, e.user_id, p.payload, CAST(:created_at AS TIMESTAMPTZ)"
    " FROM unnest(CAST(:types AS VARCHAR[]), CAST(:user_ids AS INTEGER[]))"
    " WITH ORDINALITY AS e(type, user_id, ord)"
    " JOIN json_array_elements(CAST(:payloads AS JSON)) WITH ORDINALITY AS p(payload, ord)"
    " ON p.ord = e.ord"
    " ORDER BY e.ord RETURNING id"
)


def _insert_unnest(session: Session, rows: list[dict[str, Any]], created: datetime) -> list[int]:
    """Many events in one statement of two array parameters and one JSON array (PostgreSQL).

    The rows are inserted in ordinality order, and each draws its id from the
    sequence as it is inserted, so the sorted ids belong to the rows in order.
    """
    result = session.execute(
        _INSERT_UNNEST,
        {
            "types": [row["type"] for row in rows],
            "user_ids": [row["user_id"] for row in rows],
            "payloads": json.dumps([row["payload"] for row in rows]),
            "created_at": created,
        },
    )
    return sorted(result.scalars())


def to_message(row: Any) -> dict[str, Any]:
    """The CONTRACT's flat message: id, type, timestamp, then the event's fields (of an
    Event row, a PublishedEvent or a streamed event: anything with those four)."""
    return {
        "id": row.id,
        "type": row.type,
        "timestamp": row.created_at.isoformat().replace("+00:00", "Z"),
        **row.payload,
    }


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as exact strings, datetimes RFC 3339; never a float amount."""
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)  # Decimal, enums, addresses
