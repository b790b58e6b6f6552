"""The INSERTs of readings, built once and chosen per database for speed.

A lone reading (the common case) is inserted only if no reading of its meter is
within the window, in one statement. Many readings go in one statement: on
PostgreSQL through unnest() of a few arrays, so the SQL text stays short (psycopg
parses and caches short statements; a 1000-row VALUES list is parsed anew every
time, which cost more than the insert itself); elsewhere through SQLAlchemy's
multi-row VALUES.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, insert, or_, select, text
from sqlalchemy.orm import Session

from core.db.models import MeterReading
from core.readings.rules import CheckedReading

_READINGS = MeterReading.__table__
_COLUMNS = (
    "meter_id",
    "user_id",
    "wallet_address",
    "kwh_micro",
    "reading_timestamp",
    "submitted_at",
    "status",
    "meter_signature",
    "attempts",
    "review_reason",
)
_PARAMS = {name: bindparam(name, type_=_READINGS.c[name].type) for name in _COLUMNS}
_INSERT_IF_ALONE = (
    insert(_READINGS)
    .from_select(
        list(_COLUMNS),
        select(*_PARAMS.values()).where(
            ~exists().where(
                _READINGS.c.meter_id == _PARAMS["meter_id"],
                or_(
                    _READINGS.c.reading_timestamp == _PARAMS["reading_timestamp"],
                    and_(
                        _READINGS.c.reading_timestamp > bindparam("low"),
                        _READINGS.c.reading_timestamp < bindparam("high"),
                    ),
                ),
            )
        ),
    )
    .returning(_READINGS.c.id)
)
_INSERT_ROWS = insert(_READINGS).returning(_READINGS.c.id, sort_by_parameter_order=True)
# One meter's readings: the per-batch values once, the per-reading ones as arrays.
_INSERT_UNNEST = text(
    "INSERT INTO meter_readings"
    " (meter_id, user_id, wallet_address, kwh_micro, reading_timestamp,"
    " submitted_at, status, meter_signature, attempts, review_reason)"
    " SELECT CAST(:meter_id AS INTEGER), CAST(:user_id AS INTEGER),"
    " CAST(:wallet_address AS VARCHAR), r.kwh_micro, r.reading_timestamp,"
    " CAST(:submitted_at AS TIMESTAMPTZ), r.status, r.meter_signature, 0, r.review_reason"
    " FROM unnest(CAST(:kwh_micro AS BIGINT[]), CAST(:reading_timestamp AS TIMESTAMPTZ[]),"
    " CAST(:status AS VARCHAR[]), CAST(:meter_signature AS VARCHAR[]),"
    " CAST(:review_reason AS TEXT[]))"
    " AS r(kwh_micro, reading_timestamp, status, meter_signature, review_reason)"
    " RETURNING id, reading_timestamp"
)


def reading_row(
    meter_id: int, owner_id: int, wallet: str | None, reading: CheckedReading, now: datetime
) -> dict[str, Any]:
    return {
        "meter_id": meter_id,
        "user_id": owner_id,
        "wallet_address": wallet,
        "kwh_micro": reading.kwh_micro,
        "reading_timestamp": reading.reading_timestamp,
        "submitted_at": now,
        "status": reading.status.value,
        "meter_signature": reading.signature,
        "attempts": 0,
        "review_reason": reading.hold.reason if reading.hold else None,
    }


def insert_if_alone(session: Session, row: dict[str, Any], window: timedelta) -> int | None:
    """The new reading's id, or None when its meter has a reading within the window."""
    at = row["reading_timestamp"]
    return session.scalar(_INSERT_IF_ALONE, {**row, "low": at - window, "high": at + window})


def insert_many(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert one meter's readings (distinct timestamps); their ids, in order."""
    if session.get_bind().dialect.name != "postgresql":
        return list(session.scalars(_INSERT_ROWS, list(rows)).all())
    first = rows[0]
    result = session.execute(
        _INSERT_UNNEST,
        {
            "meter_id": first["meter_id"],
            "user_id": first["user_id"],
            "wallet_address": first["wallet_address"],
            "submitted_at": first["submitted_at"],
            "kwh_micro": [row["kwh_micro"] for row in rows],
            "reading_timestamp": [row["reading_timestamp"] for row in rows],
            "status": [row["status"] for row in rows],
            "meter_signature": [row["meter_signature"] for row in rows],
            "review_reason": [row["review_reason"] for row in rows],
        },
    )
    # Matched back by timestamp, unique per meter: RETURNING's order is not promised.
    ids = {timestamp: reading_id for reading_id, timestamp in result}
    return [ids[row["reading_timestamp"]] for row in rows]
