"""The INSERTs of readings, built once and chosen per database for speed.

A lone reading (the common case) is inserted only if no reading of its meter is
within the window, in one statement. Many readings go in one statement: on
PostgreSQL through json_to_recordset() of one JSON text, so the SQL text stays short (psycopg
parses and caches short statements; a 1000-row VALUES list is parsed anew every
time, which cost more than the insert itself); elsewhere through SQLAlchemy's
multi-row VALUES.
"""

from __future__ import annotations

import json
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
# Many readings of any meters: the per-unit value (submitted_at) once, the rows as one JSON
# array text. Not an array parameter per column: psycopg writes an array element by element
# in Python (escaping each string with a regular expression), about 15 µs per value, which
# cost more CPU than the rest of a group's insert (cProfile of ingest).
_INSERT_UNNEST = text(
    "INSERT INTO meter_readings"
    " (meter_id, user_id, wallet_address, kwh_micro, reading_timestamp,"
    " submitted_at, status, meter_signature, attempts, review_reason)"
    " SELECT r.meter_id, r.user_id, r.wallet_address, r.kwh_micro, r.reading_timestamp,"
    " CAST(:submitted_at AS TIMESTAMPTZ), r.status, r.meter_signature, 0, r.review_reason"
    " FROM json_to_recordset(CAST(:rows AS JSON))"
    " AS r(meter_id INTEGER, user_id INTEGER, wallet_address VARCHAR, kwh_micro BIGINT,"
    " reading_timestamp TIMESTAMPTZ, status VARCHAR, meter_signature VARCHAR,"
    " review_reason TEXT)"
    " RETURNING id, meter_id, reading_timestamp"
)
_JSON_COLUMNS = (
    "meter_id",
    "user_id",
    "wallet_address",
    "kwh_micro",
    "status",
    "meter_signature",
    "review_reason",
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
    """Insert readings of one or many meters (distinct (meter, timestamp), one submitted_at);
    their ids, in order. Every reading the console stores goes in here or through
    `insert_if_alone`."""
    if session.get_bind().dialect.name != "postgresql":
        return list(session.scalars(_INSERT_ROWS, list(rows)).all())
    document = json.dumps(
        [
            {
                **{name: row[name] for name in _JSON_COLUMNS},
                # RFC 3339 with its offset: PostgreSQL reads it back to the microsecond.
                "reading_timestamp": row["reading_timestamp"].isoformat(),
            }
            for row in rows
        ]
    )
    parameters = {"rows": document, "submitted_at": rows[0]["submitted_at"]}
    result = session.execute(_INSERT_UNNEST, parameters)
    # Matched back by (meter, timestamp), unique: RETURNING's order is not promised.
    ids = {(meter_id, at): reading_id for reading_id, meter_id, at in result}
    return [ids[(row["meter_id"], row["reading_timestamp"])] for row in rows]
