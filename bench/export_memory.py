"""Peak memory of one CSV export, in a process of its own so nothing else counts.

    .venv/bin/python -m bench.export_memory DATABASE_URL [TABLE] [USERNAME]

Streams the export exactly as the dashboard's route and the API do
(core.exports.csv_stream) into a file, and prints one JSON line: rows, bytes,
seconds, and the process's resident memory before the export and at its peak
(VmHWM). bench/dashboard.py runs it after seeding.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.engine import create_db_engine
from core.db.models import User
from core.exports.csv_stream import stream_csv
from core.exports.tables import export_table
from core.views.filters import TableFilter


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def main(argv: list[str]) -> int:
    url = argv[0]
    table = argv[1] if len(argv) > 1 else "readings"
    username = argv[2] if len(argv) > 2 else "root"
    engine = create_db_engine(url)
    with Session(engine) as session:
        user_id = session.scalars(select(User.id).where(User.username == username)).one()
    before = _rss_mb()
    started = time.perf_counter()
    rows = size = 0
    with tempfile.TemporaryFile() as out:
        for chunk in stream_csv(engine, export_table(table), user_id, TableFilter()):
            out.write(chunk)
            size += len(chunk)
            rows += chunk.count(b"\r\n")
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large
    # process (bench/dashboard.py after rendering pages) would report its parent's size.
    peak = _status_mb("VmHWM")
    engine.dispose()
    figures = {
        "table": table,
        "rows": rows - 1,
        "bytes": size,
        "seconds": round(seconds, 1),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        # What the resident memory is at the end: the heap, or pages of mapped files
        # (SQLite's WAL index is a shared mapping).
        "rss_anon_mb": _status_mb("RssAnon"),
        "rss_file_mb": _status_mb("RssFile"),
        "rss_shmem_mb": _status_mb("RssShmem"),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
