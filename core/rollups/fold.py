"""Fold PostgreSQL's rollup deltas into the rollup tables, in chunks, one statement each.

One statement deletes a chunk of deltas and adds it to both rollup tables (writable
CTEs share one snapshot, so what is added is exactly what was deleted). Two folders at
once delete disjoint rows (a row another deleted is skipped) and lock rollup rows in
key order, so they queue rather than deadlock. Writers never wait here: they only
append deltas.
"""

# ruff: noqa: S608 -- the SQL is built from this module's own constants, never from input

from __future__ import annotations

from sqlalchemy import Engine, text

from core.db.models import ROLLUP_MEASURES, ReadingStatus

CHUNK = 20_000
KEY = "bucket, meter_id, user_id, wallet"


def _wide() -> str:
    columns = [f"CASE WHEN status = '{s}' THEN readings ELSE 0 END AS n_{s}" for s in ReadingStatus]
    columns += [
        f"CASE WHEN status = '{s}' THEN kwh_micro ELSE 0 END AS kwh_{s}" for s in ReadingStatus
    ]
    columns.append("CASE WHEN status = 'minted' THEN base_units ELSE 0 END AS minted_units")
    return ", ".join(columns)


def _add(table: str, bucket: str) -> str:
    sums = ", ".join(f"sum({name})" for name in ROLLUP_MEASURES)
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in ROLLUP_MEASURES)
    return (
        f"INSERT INTO {table} ({KEY}, {', '.join(ROLLUP_MEASURES)}) "
        f"SELECT {bucket}, meter_id, user_id, wallet, {sums} FROM wide "
        f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 "
        f"ON CONFLICT ({KEY}) DO UPDATE SET {updates}"
    )


_FOLD = text(
    "WITH moved AS (DELETE FROM reading_rollup_deltas WHERE id IN "
    "(SELECT id FROM reading_rollup_deltas ORDER BY id LIMIT :chunk) "
    "RETURNING bucket, meter_id, user_id, wallet, status, readings, kwh_micro, base_units), "
    f"wide AS (SELECT bucket, meter_id, user_id, wallet, {_wide()} FROM moved), "
    f"fifteen AS ({_add('reading_rollups', 'bucket')}), "
    f"daily AS ({_add('reading_rollups_daily', 'bucket / 86400 * 86400')}) "
    "SELECT count(*) FROM moved"
)


# The fleet's flow (migration 0205, core.rollups.flow): one row per axis and bucket.
_FOLD_FLOW = text(
    "WITH moved AS (DELETE FROM reading_flow_deltas WHERE id IN "
    "(SELECT id FROM reading_flow_deltas ORDER BY id LIMIT :chunk) "
    "RETURNING axis, bucket, readings, rejected, kwh_micro), "
    "added AS (INSERT INTO reading_flow (axis, bucket, readings, rejected, kwh_micro) "
    "SELECT axis, bucket, sum(readings), sum(rejected), sum(kwh_micro) FROM moved "
    "GROUP BY axis, bucket ORDER BY axis, bucket ON CONFLICT (axis, bucket) DO UPDATE SET "
    "readings = reading_flow.readings + excluded.readings, "
    "rejected = reading_flow.rejected + excluded.rejected, "
    "kwh_micro = reading_flow.kwh_micro + excluded.kwh_micro) "
    "SELECT count(*) FROM moved"
)


def fold_deltas(engine: Engine, *, chunk: int = CHUNK) -> int:
    """Deltas folded in (rollups and flow); 0 on SQLite, whose triggers write directly."""
    if engine.dialect.name != "postgresql":
        return 0
    folded = 0
    for statement in (_FOLD, _FOLD_FLOW):
        while True:
            with engine.begin() as connection:
                moved = int(connection.execute(statement, {"chunk": chunk}).scalar_one())
            folded += moved
            if moved < chunk:
                break
    return folded
