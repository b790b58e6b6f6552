"""Benchmark: meter ingest over HTTP on PostgreSQL, individually and in batches.

    .venv/bin/python -m bench.ingest [--database-url postgresql+psycopg://...] [--workers 2]

Creates a fresh database on the server of --database-url (default TEST_DATABASE_URL),
migrates it, registers the meters, starts `python -m api --workers N` on a free
port, then:

1. individual (--runs times): --clients concurrent clients (one meter each, a lean
   keep-alive client, bench.lean_http) each submit --per-client signed readings one
   after the other; the median run is named;
2. batch: --batch-meters meters submit one batch of --batch-size readings each,
   --batch-concurrency at a time;
3. dlms plaintext, then dlms encrypted (bench.ingest_dlms): --dlms-meters GridTokenX
   meters behind one gateway key send --dlms-ticks 5-second ticks each, over
   --dlms-clients keep-alive connections, to POST /v1/private-network/ingest. By
   default these are the individual phase's --clients and --per-client, so the
   comparison is like for like (same connections, same requests per phase).

The individual and DLMS runs are interleaved (individual, plaintext, encrypted; then
the same rotated by one), each after a CHECKPOINT, so each comparison is made under
the same load and no path always follows the same one; the median of each is named.
`--phases compare` runs only those (no batch), `--phases dlms` only the DLMS runs.
Before the first round, an unmeasured warm-up round (--warmup meters per path, 3
requests each) has every statement prepared, so no path pays for that in round 1.

Prints accepted readings/s and request latency p50/p95/p99 per phase, the CPU
time per reading of the API processes, PostgreSQL and this client (steadier than
throughput on a shared machine), and the load average; asserts that every
request succeeded (zero 5xx) and that the stored count equals the accepted count.
Readings are signed before the clock starts. The duplicate window is set to
300 s so a meter's 1000-reading batch (6 minutes apart) fits in the 7-day age
limit. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench import ingest_dlms as dlms_bench
from bench.databases import admin_execute, migrated_pg_database
from bench.lean_http import drive, request_bytes
from bench.registration import add_prosumer_meters, numbered
from core.db.engine import create_db_engine, session_factory
from core.db.models import MeterReading
from core.meters import hash_api_key, new_api_key
from tests.factories import keypair_for, sign

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SPACING = timedelta(minutes=6)
ORIGIN = datetime.now(UTC).replace(microsecond=0)  # the newest reading of run 0


def _cpu_secs(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def _pids(*pgrep_args: str) -> list[int]:
    found = subprocess.run(["pgrep", *pgrep_args], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


@dataclass
class CpuMeter:
    """CPU seconds of the API processes, the database's processes and this client.

    On a shared 2-core machine throughput swings with whatever else runs; CPU per
    reading does much less, so it is reported too.
    """

    api_group: int
    database: str
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def sample(self) -> tuple[float, float, float]:
        server = _cpu_secs(_pids("-g", str(self.api_group)))
        # The bench database's backends, plus the WAL writer every commit waits on.
        postgres = _cpu_secs(_pids("-u", "postgres", "-f", f"{self.database}|walwriter"))
        return server, postgres, time.process_time()

    def begin(self) -> None:
        self.start = self.sample()

    def per_reading_ms(self, readings: int) -> str:
        end = self.sample()
        api, pg, client = (
            1000 * (b - a) / max(1, readings) for a, b in zip(self.start, end, strict=True)
        )
        return f"CPU per reading: api {api:.2f} ms, postgres {pg:.2f} ms, client {client:.2f} ms"


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    elapsed: float = 0.0
    cpu: str = ""

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def report(self) -> str:
        return (
            f"{self.name}: {self.accepted} accepted in {self.elapsed:.2f} s = "
            f"{self.accepted / self.elapsed:,.0f} accepted/s; {len(self.latencies)} requests, "
            f"latency p50 {self.percentile(0.50):.1f} ms, p95 {self.percentile(0.95):.1f} ms, "
            f"p99 {self.percentile(0.99):.1f} ms; statuses {dict(sorted(self.statuses.items()))}"
            f"\n  {self.cpu}; load average {os.getloadavg()[0]:.1f}"
        )


def _combined(phases: list[Phase]) -> Phase:
    total = Phase(phases[0].name)
    for phase in phases:
        total.latencies += phase.latencies
        total.statuses += phase.statuses
        total.accepted += phase.accepted
        total.elapsed += phase.elapsed
    return total


def register(url: str, count: int, prefix: str = "BENCH") -> list[tuple[str, str]]:
    """`count` meters ({prefix}-00000, ...), one prosumer each: (serial, api_key), inserted
    in bulk (registration is not what is measured)."""
    engine = create_db_engine(url)
    serials, owners = numbered(prefix, count)
    keys = {serial: new_api_key() for serial in serials}
    with session_factory(engine)() as session:
        add_prosumer_meters(
            session,
            serials,
            owners,
            lambda serial: {
                "public_key": str(keypair_for(serial).pubkey()),
                "api_key_hash": hash_api_key(keys[serial]),
            },
        )
    engine.dispose()
    return list(keys.items())


def bodies(serial: str, count: int, now: datetime) -> list[dict]:
    keypair = keypair_for(serial)
    readings = []
    for index in range(count):
        at = now - SPACING * (index + 1)
        kwh = f"{(index % 97 + 1) / 100:.2f}"
        readings.append(
            {
                "meter_serial": serial,
                "kwh_amount": kwh,
                "reading_timestamp": at.isoformat().replace("+00:00", "Z"),
                "meter_signature": sign(keypair, serial, at, kwh),
            }
        )
    return readings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(url: str, workers: int) -> Iterator[tuple[str, int, Path]]:
    port = _free_port()
    data_dir = tempfile.mkdtemp(prefix="gtx-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": data_dir,
        "API_PORT": str(port),
        "ADMIN_PASSWORD": "bench-admin-password",
        "TOKENIZATION_DUPLICATE_WINDOW_SECS": "300",
        # Capacity is measured here, not the per-meter reading budget.
        "METER_RATE_LIMIT_PER_MINUTE": "100000",
        "METER_RATE_LIMIT_BURST": "100000",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        # A loaded client may take a while to send its next request on a connection.
        [sys.executable, "-m", "api", "--workers", str(workers), "--timeout-keep-alive", "120"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        yield base, process.pid, Path(data_dir)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


async def _post_all(
    client: httpx.AsyncClient, path: str, payloads: list[bytes], key: str, phase: Phase
) -> None:
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    for payload in payloads:
        started = time.perf_counter()
        response = await client.post(path, content=payload, headers=headers)
        phase.latencies.append(time.perf_counter() - started)
        phase.statuses[response.status_code] += 1
        if response.status_code == 201:
            phase.accepted += 1
        elif response.status_code == 200 and path.endswith("submit-batch"):
            phase.accepted += response.json()["accepted"]


async def individual(
    base: str, meters: list[tuple[str, str]], per_client: int, cpu: CpuMeter, *, run: int = 0
) -> Phase:
    """Each client is one keep-alive connection sending its readings one after the other.

    The load comes from bench.lean_http, not httpx: on two shared cores httpx spent
    about 1.5 ms of CPU per request, taken from the server being measured.
    """
    # Each run's readings lie before the previous run's, so none is a duplicate: counted
    # from one origin, since a run slower than the duplicate window would otherwise
    # overlap the one before.
    now = ORIGIN - run * per_client * SPACING
    url = make_url(base.replace("http://", "http+raw://"))
    host, port = url.host or "127.0.0.1", int(url.port or 80)
    work = [
        [
            request_bytes(
                "POST",
                f"{host}:{port}",
                "/api/meters/submit-reading",
                json.dumps(body).encode(),
                {"X-API-Key": key, "Content-Type": "application/json"},
            )
            for body in bodies(serial, per_client, now)
        ]
        for serial, key in meters
    ]
    phase = Phase(f"individual ({len(meters)} concurrent clients × {per_client})")
    await drive(host, port, work, phase, cpu, ok=201)
    return phase


async def batches(
    base: str, meters: list[tuple[str, str]], size: int, concurrency: int, cpu: CpuMeter
) -> Phase:
    now = datetime.now(UTC).replace(microsecond=0)
    payloads = [
        (key, json.dumps({"readings": bodies(serial, size, now)}).encode())
        for serial, key in meters
    ]
    phase = Phase(f"batch ({len(meters)} batches × {size}, {concurrency} concurrent)")
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in payloads:
        queue.put_nowait(item)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            while not queue.empty():
                key, payload = queue.get_nowait()
                await _post_all(client, "/api/meters/submit-batch", [payload], key, phase)

    cpu.begin()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - started
    phase.cpu = cpu.per_reading_ms(phase.accepted)
    return phase


def stored(url: str) -> int:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(MeterReading)).scalar_one()
    engine.dispose()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="individual phase repetitions")
    parser.add_argument("--batch-meters", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--dlms-meters", type=int, help="default: --clients")
    parser.add_argument("--dlms-ticks", type=int, help="default: --per-client")
    parser.add_argument("--dlms-clients", type=int, help="default: --clients")
    parser.add_argument(
        "--warmup", type=int, default=100, help="meters per path in an unmeasured first round"
    )
    parser.add_argument(
        "--phases",
        choices=["all", "compare", "dlms"],
        default="all",
        help="compare: individual and DLMS only (no batch); dlms: only the DLMS phases",
    )
    args = parser.parse_args(argv)
    args.dlms_meters = args.dlms_meters or args.clients
    args.dlms_ticks = args.dlms_ticks or args.per_client
    args.dlms_clients = args.dlms_clients or args.clients
    if make_url(args.database_url).get_backend_name() != "postgresql":
        raise SystemExit("the ingest benchmark runs on PostgreSQL (--database-url)")

    with migrated_pg_database(args.database_url) as url:
        print(f"database: {make_url(url).render_as_string(hide_password=True)}")
        classic = args.phases != "dlms"
        batch_meters = args.batch_meters if args.phases == "all" else 0
        meters = register(url, args.clients + batch_meters + args.warmup) if classic else []
        single = meters[: args.clients]
        batched = meters[args.clients : args.clients + batch_meters]
        warm_meters = meters[args.clients + batch_meters :]
        with api_server(url, args.workers) as (base, group, data_dir):
            print(f"api: {base} with {args.workers} workers")
            cpu = CpuMeter(group, make_url(url).database or "")
            runs: dict[str, list[Phase]] = {"individual": [], "plaintext": [], "encrypted": []}
            warm = _warm_up(url, base, data_dir, args, cpu, warm_meters) if args.warmup else []
            # Interleaved: each round measures every path under the same load, in an
            # order rotated from round to round (a phase pays for the WAL and dirty
            # pages the one before it left), each after a CHECKPOINT, with every
            # fleet registered and every frame signed before the round's first phase.
            for run in range(args.runs):
                fleets = {
                    kind: _dlms_prepare(url, data_dir, args, kind == "encrypted", run)
                    for kind in ("plaintext", "encrypted")
                }
                order = [*(["individual"] if classic else []), "plaintext", "encrypted"]
                for kind in order[run % len(order) :] + order[: run % len(order)]:
                    admin_execute(args.database_url, "CHECKPOINT")
                    if kind == "individual":
                        phase = asyncio.run(individual(base, single, args.per_client, cpu, run=run))
                        print(f"run {run + 1}: {phase.report()}", flush=True)
                    else:
                        phase = _dlms_run(base, cpu, *fleets[kind])
                    runs[kind].append(phase)
            if classic:
                _median("individual", runs["individual"])
            _median("dlms plaintext", runs["plaintext"])
            _median("dlms encrypted", runs["encrypted"])
            many = None
            if batched:
                many = asyncio.run(
                    batches(base, batched, args.batch_size, args.batch_concurrency, cpu)
                )
                print(many.report(), flush=True)
        gridtokenx = runs["plaintext"] + runs["encrypted"]
        warm_samples = sum(p.accepted for p in warm if not p.name.startswith("individual"))
        warm_readings = sum(p.accepted for p in warm if p.name.startswith("individual"))
        if classic:
            one = _combined(runs["individual"])
            count = stored(url)
            accepted = one.accepted + (many.accepted if many else 0) + warm_readings
            print(f"stored readings: {count}; accepted: {accepted}")
            statuses = one.statuses + (many.statuses if many else Counter())
            server_errors = sum(n for s, n in statuses.items() if s >= 500)
            assert server_errors == 0, f"{server_errors} responses were 5xx"
            assert count == accepted, "stored count differs from accepted count"
            assert one.accepted == args.runs * args.clients * args.per_client, "readings failed"
            if many:
                assert many.accepted == args.batch_meters * args.batch_size, "batch failed"
        samples = dlms_bench.stored_samples(url)
        accepted_samples = sum(p.accepted for p in gridtokenx) + warm_samples
        print(f"stored samples: {samples}; accepted: {accepted_samples} (warm-up included)")
        assert samples == accepted_samples, "stored samples differ"
        for phase in gridtokenx:
            assert phase.accepted == args.dlms_meters * args.dlms_ticks, f"{phase.name} failed"
            assert not [s for s in phase.statuses if s >= 500], f"{phase.name}: 5xx"
    return 0


def _median(name: str, runs: list[Phase]) -> None:
    rates = sorted(p.accepted / p.elapsed for p in runs)
    print(
        f"{name}: median of {len(runs)} runs {rates[len(rates) // 2]:,.0f} "
        f"accepted/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})",
        flush=True,
    )


def _warm_up(
    url: str,
    base: str,
    data_dir: Path,
    args: argparse.Namespace,
    cpu: CpuMeter,
    warm_meters: list[tuple[str, str]],
) -> list[Phase]:
    """One short unmeasured phase of each path on meters of its own: every statement the
    rounds run has been prepared (psycopg prepares one after its fifth execution) before
    the first measured phase, so no path pays for it in round 1 alone."""
    small = argparse.Namespace(
        dlms_meters=args.warmup, dlms_ticks=3, dlms_clients=min(args.warmup, args.dlms_clients)
    )
    phases = []
    if warm_meters:
        phase = asyncio.run(individual(base, warm_meters, 3, cpu))
        phase.name = f"individual warm-up: {phase.name}"
        phases.append(phase)
    for encrypted in (False, True):
        fleet = _dlms_prepare(url, data_dir, small, encrypted, args.runs)
        phases.append(_dlms_run(base, cpu, *fleet[:3], f"warm-up {fleet[3]}", quiet=True))
    print(f"warm-up: {', '.join(f'{p.accepted}' for p in phases)} accepted (not measured)")
    return phases


def _dlms_prepare(
    url: str, data_dir: Path, args: argparse.Namespace, encrypted: bool, run: int
) -> tuple[str, list[list[bytes]], int, str]:
    """A DLMS run's own fleet behind one gateway key, so every run is alike; its frames."""
    prefix = f"{'GTXENC' if encrypted else 'GTXBENCH'}{run}"
    key = dlms_bench.register_fleet(url, data_dir, args.dlms_meters, prefix, encrypted=encrypted)
    serials = [f"{prefix}-{i:05d}" for i in range(args.dlms_meters)]
    per_meter = dlms_bench.frames(
        serials, args.dlms_ticks, dlms_bench.now_for_ticks(args.dlms_ticks), encrypted=encrypted
    )
    name = (
        f"dlms {'encrypted' if encrypted else 'plaintext'} run {run + 1} ({args.dlms_meters} "
        f"meters × {args.dlms_ticks} ticks, one gateway key, {args.dlms_clients} connections)"
    )
    return key, per_meter, args.dlms_clients, name


def _dlms_run(
    base: str,
    cpu: CpuMeter,
    key: str,
    per_meter: list[list[bytes]],
    clients: int,
    name: str,
    *,
    quiet: bool = False,
) -> Phase:
    phase = Phase(name)
    asyncio.run(dlms_bench.dlms(base, key, per_meter, clients, phase, cpu))
    if not quiet:
        print(phase.report(), flush=True)
    return phase


if __name__ == "__main__":
    sys.exit(main())
