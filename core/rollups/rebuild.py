"""Rebuild the rollups and the flow (core.rollups.flow) from the rows, for a database
filled with triggers off.

A bulk load with `session_replication_role = replica` (COPY in bench/dashboard_seed.py,
a restore) fires no trigger, so its rollups must be summed once afterwards. Never run
it on a database the archive has thinned: archived readings are counted only by the
rollups and would be lost from them.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from core.db.models import ROLLUP_MEASURES, ReadingStatus

KEY = "bucket, meter_id, user_id, wallet"
EPOCH = {
    "postgresql": "CAST(floor(date_part('epoch', reading_timestamp)) AS BIGINT)",
    "sqlite": "CAST(strftime('%s', substr(reading_timestamp, 1, 19)) AS INTEGER)",
}


def _sums() -> str:
    columns = [f"sum(CASE WHEN status = '{s}' THEN 1 ELSE 0 END)" for s in ReadingStatus]
    columns += [f"sum(CASE WHEN status = '{s}' THEN kwh_micro ELSE 0 END)" for s in ReadingStatus]
    columns.append("sum(CASE WHEN status = 'minted' THEN coalesce(token_base_units, 0) ELSE 0 END)")
    return ", ".join(columns)


FLOW_AXES = {"reading": "reading_timestamp", "submitted": "submitted_at", "minted": "minted_at"}


def _rebuild_flow(connection: Connection) -> None:
    """reading_flow and minted_latency (migration 0205) from the rows."""

    def epoch(column: str) -> str:
        return EPOCH[connection.dialect.name].replace("reading_timestamp", column)

    for table in ("reading_flow_deltas", "reading_flow", "minted_latency"):
        connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 -- constants only
    for axis, column in FLOW_AXES.items():
        connection.execute(
            text(
                "INSERT INTO reading_flow (axis, bucket, readings, rejected, kwh_micro) "  # noqa: S608
                f"SELECT '{axis}', {epoch(column)} / 900 * 900 AS b, count(*), "
                "sum(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), sum(kwh_micro) "
                f"FROM meter_readings WHERE {column} IS NOT NULL GROUP BY b"
            )
        )
    connection.execute(
        text(
            "INSERT INTO minted_latency (bucket, latency_secs, readings) "  # noqa: S608
            f"SELECT {epoch('minted_at')} / 900 * 900 AS b, "
            f"{epoch('minted_at')} - {epoch('submitted_at')} AS l, count(*) "
            "FROM meter_readings WHERE minted_at IS NOT NULL GROUP BY b, l"
        )
    )


def rebuild_rollups(connection: Connection) -> None:
    """Replace the rollup tables and the flow (and drop pending deltas) with sums of the
    rows."""
    _rebuild_flow(connection)
    epoch = EPOCH[connection.dialect.name]
    connection.execute(text("DELETE FROM reading_rollup_deltas"))
    for table, size in (("reading_rollups", 900), ("reading_rollups_daily", 86_400)):
        connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 -- constants only
        connection.execute(
            text(
                f"INSERT INTO {table} ({KEY}, {', '.join(ROLLUP_MEASURES)}) "  # noqa: S608
                f"SELECT {epoch} / {size} * {size} AS b, meter_id, user_id, "
                f"coalesce(wallet_address, '') AS w, {_sums()} FROM meter_readings "
                "GROUP BY b, meter_id, user_id, w"
            )
        )
