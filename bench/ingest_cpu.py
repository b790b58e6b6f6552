"""Benchmark: CPU per request of each ingest path in process (no HTTP), PostgreSQL.

    .venv/bin/python -m bench.ingest_cpu [--meters 1000] [--ticks 10] [--group 100]
        [--profile classic|plaintext|encrypted ...] [--top 30]

The HTTP bench's (bench.ingest) throughput swings with whatever else runs on a shared
machine; this measures only what differs between the doors, in one process. A fresh
database gets, per path, --meters meters: classic ones with their own keys, and two
GridTokenX fleets behind one gateway key each (plaintext, and dlms-enc with sealed
AES keys), each sending --ticks readings or 5-second ticks (a meter's first tick opens
its interval, as in the HTTP bench; all of them lie in one settlement interval). Tick
by tick, groups of --group requests of distinct meters (as group commit forms them)
go through api.group_ingest.accept_requests, the paths interleaved group by group;
each body's JSON is parsed in the measured time (the route does that). An unmeasured
fleet of --warmup meters per path runs first, so every statement is prepared.

Prints the process CPU and wall time per request of each path; --profile names a path
(repeatable) whose groups run under cProfile (its top --top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bench import ingest as http_bench
from bench import ingest_dlms as dlms_bench
from bench.databases import migrated_pg_database

PATHS = ("classic", "plaintext", "encrypted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_cpu", description=__doc__)
    url = os.environ.get("TEST_DATABASE_URL", http_bench.DEFAULT_URL)
    parser.add_argument("--database-url", default=url)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--group", type=int, default=100)
    parser.add_argument(
        "--warmup", type=int, default=200, help="meters per path of an unmeasured first fleet"
    )
    parser.add_argument("--profile", choices=PATHS, action="append", default=[])
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    with migrated_pg_database(args.database_url) as database:
        data_dir = Path(tempfile.mkdtemp(prefix="gtx-ingest-cpu-"))
        warm = _requests(database, data_dir, args.warmup, args.ticks, "W") if args.warmup else {}
        requests = _requests(database, data_dir, args.meters, args.ticks, "M")
        state = _state(database, data_dir)
        profilers = {path: cProfile.Profile() for path in args.profile}
        try:
            if warm:
                _run(state, warm, args.group, {})
            totals = _run(state, requests, args.group, profilers)
            _report(totals, profilers, args)
        finally:
            state.core.close()
    return 0


def _requests(
    database: str, data_dir: Path, meters: int, ticks: int, tag: str
) -> dict[str, list[list[tuple[str, bytes]]]]:
    """Per path, per tick (oldest first), each meter's body as (api key, bytes)."""
    now = dlms_bench.now_for_ticks(ticks)
    classic = http_bench.register(database, meters, prefix=f"CPU{tag}")
    signed = [(key, http_bench.bodies(serial, ticks, now)[::-1]) for serial, key in classic]
    per_path: dict[str, list[list[tuple[str, bytes]]]] = {
        "classic": [
            [(key, json.dumps(readings[tick]).encode()) for key, readings in signed]
            for tick in range(ticks)
        ]
    }
    for kind in ("plaintext", "encrypted"):
        encrypted = kind == "encrypted"
        prefix = f"GTXCPU{tag}{'ENC' if encrypted else ''}"
        key = dlms_bench.register_fleet(database, data_dir, meters, prefix, encrypted=encrypted)
        serials = [f"{prefix}-{i:05d}" for i in range(meters)]
        frames = dlms_bench.frames(serials, ticks, now, encrypted=encrypted)
        per_path[kind] = [[(key, meter[tick]) for meter in frames] for tick in range(ticks)]
    return per_path


def _state(database: str, data_dir: Path):  # type: ignore[no-untyped-def]
    os.environ.update(
        DATABASE_URL=database,
        DATA_DIR=str(data_dir),
        ADMIN_PASSWORD="bench-admin-password",
        TOKENIZATION_DUPLICATE_WINDOW_SECS="300",
        METER_RATE_LIMIT_PER_MINUTE="100000",
        METER_RATE_LIMIT_BURST="100000",
    )
    from api.state import build_state
    from core.bootstrap import bootstrap

    return build_state(bootstrap(pre_ping=False))


def _run(state, requests, group_size: int, profilers: dict) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Every path's requests, tick by tick, groups of `group_size` interleaved by path;
    per path [CPU seconds, wall seconds, requests]."""
    from api.body import JsonBody
    from api.group_ingest import SUBMIT_READING, ReadingRequest, accept_requests
    from api.routes.bridge import GRIDTOKENX
    from core.readings.json_text import parse_json

    doors = {"classic": SUBMIT_READING, "plaintext": GRIDTOKENX, "encrypted": GRIDTOKENX}
    totals = {path: [0.0, 0.0, 0] for path in PATHS}
    meters = len(requests["classic"][0])
    for tick in range(len(requests["classic"])):
        for start in range(0, meters, group_size):
            for path in PATHS:
                chunk = requests[path][tick][start : start + group_size]
                profiler = profilers.get(path)
                began, began_wall = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                group = [
                    ReadingRequest(key, JsonBody(parse_json(body)), doors[path])
                    for key, body in chunk
                ]
                answers = accept_requests(state, group)
                if profiler:
                    profiler.disable()
                totals[path][0] += time.process_time() - began
                totals[path][1] += time.perf_counter() - began_wall
                totals[path][2] += len(chunk)
                bad = [a for a in answers if getattr(a, "status_code", 0) not in (201, 202)]
                assert not bad, f"{path}: {bad[:3]}"
    return totals


def _report(totals: dict[str, list[float]], profilers: dict, args: argparse.Namespace) -> None:
    for path in PATHS:
        cpu, wall, count = totals[path]
        print(
            f"{path}: {count} requests in groups of {args.group}: CPU "
            f"{1000 * cpu / count:.3f} ms, wall {1000 * wall / count:.3f} ms per request"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")
    for path, profiler in profilers.items():
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        print(f"--- {path} (cProfile)\n{out.getvalue()}")


if __name__ == "__main__":
    sys.exit(main())
