"""Benchmark: a fleet at once on PostgreSQL: ingest, two schedulers minting, WebSocket
listeners and the dashboard, then the dashboard over a seeded history.

    .venv/bin/python -m bench.fleet                                   # issue 16's defaults
    .venv/bin/python -m bench.fleet --meters 2000 --intervals 2 --seed-readings 0

--meters meters of as many prosumers (one wallet each) report --intervals 15-minute
intervals, time compressed: interval k is due at k * --interval-secs after the start
(default meters / 1,111 s, the fleet rate of a million meters), and its readings go
out as fast as they can from then on, --gateway-share of the meters as gateway batches
(one batch per gateway of --gateway-size meters, over --batch-connections) and the rest
as individual requests (over --connections keep-alive connections, bench.lean_http).
`python -m api --workers 2` takes them; two `python -m scheduler` processes mint at
default settings through the embedded localnet (400 ms slots; token accounts for
every wallet created before the clock, timed apart); --staff staff WebSocket clients
on the coalesced stream and --prosumers prosumer clients on their own events listen
(bench/ws_clients.py); while the readings arrive the dashboard's pages are rendered
in a process of their own (bench/dashboard.py's cases, AppTest).

Prints readings/s accepted and minted (sustained over the run, and per minute),
acceptance -> minted p50/p95/p99, transactions, lost and doubled, on-chain supply
against the minted base units, database bytes per million readings, CPU per reading
of each part, WebSocket commit -> receipt of --probe-rate probe events written during
the run (prosumers: their own, one by one; staff: through their summaries), and each
page's time. Then, for each
of --seed-readings (comma separated; 0 to skip), a fresh database seeded by
bench/dashboard_seed.py and every page timed (bench/dashboard.py). Load averages at
each step. Databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import multiprocessing
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from solders.keypair import Keypair
from solders.signature import Signature
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from bench import dashboard
from bench.chain_mint import embedded_node
from bench.databases import migrated_pg_database
from bench.ingest import _cpu_secs, _pids, api_server
from bench.lean_http import Connection, request_bytes
from bench.ws_clients import Client, run_clients
from core.bootstrap import bootstrap
from core.config import load_settings
from core.db.engine import create_db_engine, session_factory
from core.db.models import Meter, MeterReading, Role, SessionKind, User
from core.db.types import utcnow
from core.events import publish
from core.gateways import create_gateway
from core.meters import API_KEY_PREFIX, hash_api_key
from core.sessions import SessionPolicy, start_session
from core.signatures import reading_message
from scheduler.service import build_minter
from tests.factories import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FLEET_RATE = 1_000_000 / 900  # readings/s of a million meters every 15 minutes
INTERVAL = timedelta(minutes=15)
SECRET = "bench-fleet-secret-" + "x" * 32
PAGES_RUNS = 3


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} / {fifteen:.1f}"


def say(line: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", flush=True)


# --- the fleet ------------------------------------------------------------------------------


def _wallet(index: int) -> str:
    seed = hashlib.sha256(f"fleet-wallet:{index}".encode()).digest()
    return str(Keypair.from_seed(seed).pubkey())


def _meter_key(serial: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"fleet-meter:{serial}".encode()).digest())


def _api_key(serial: str) -> str:
    return API_KEY_PREFIX + hashlib.sha256(f"fleet-key:{serial}".encode()).hexdigest()[:43]


@dataclass
class Fleet:
    serials: list[str]
    keys: dict[str, str]  # serial -> its meter's API key (individual senders)
    gateways: list[tuple[str, list[str]]]  # (gateway key, its meters' serials)
    individual: list[str]
    wallets: list[str]
    clients: list[Client] = field(default_factory=list)
    prosumer_ids: list[int] = field(default_factory=list)


def register_fleet(url: str, args: argparse.Namespace) -> Fleet:
    """Prosumers, meters and gateways in bulk (one statement each), the staff and the
    listening prosumers with API sessions for their WebSocket clients."""
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    now = utcnow()
    serials = [f"FLEET-{m:06d}" for m in range(args.meters)]
    wallets = [_wallet(m) for m in range(args.meters)]
    digest = _password_digest()
    with sessions() as session:
        staff = [{"username": "root", "role": Role.ADMIN.value}]
        staff += [{"username": "ops", "role": Role.OPERATOR.value}]
        staff += [
            {"username": f"ops{i:03d}", "role": Role.OPERATOR.value}
            for i in range(-(-args.staff // 5))  # five connections per user, the limit
        ]
        rows = [{**s, "wallet_address": None} for s in staff]
        rows += [
            {"username": f"fp{m:06d}", "role": Role.PROSUMER.value, "wallet_address": wallets[m]}
            for m in range(args.meters)
        ]
        for chunk in range(0, len(rows), 10_000):
            session.execute(
                insert(User),
                [
                    {**row, "password_hash": digest, "disabled": False, "created_at": now}
                    for row in rows[chunk : chunk + 10_000]
                ],
            )
        owners = dict(
            session.execute(
                select(User.username, User.id).where(User.role == Role.PROSUMER.value)
            ).all()
        )
        keys = {serial: _api_key(serial) for serial in serials}
        meters = [
            {
                "serial": serial,
                "owner_id": owners[f"fp{m:06d}"],
                "public_key": str(_meter_key(serial).pubkey()),
                "api_key_hash": hash_api_key(keys[serial]),
                "status": "active",
                "created_at": now,
            }
            for m, serial in enumerate(serials)
        ]
        for chunk in range(0, len(meters), 10_000):
            session.execute(insert(Meter), meters[chunk : chunk + 10_000])
        session.commit()
        through = int(args.meters * args.gateway_share)
        gateways = []
        for start in range(0, through, args.gateway_size):
            share = serials[start : min(through, start + args.gateway_size)]
            issued = create_gateway(session, f"FLEET-GW-{start // args.gateway_size:04d}", share)
            gateways.append((issued.api_key, share))
        policy = SessionPolicy(max_hours=24, idle_minutes=1440)

        def token(username: str) -> tuple[int, str]:
            user = session.scalars(select(User).where(User.username == username)).one()
            issued = start_session(
                session, user, SECRET, kind=SessionKind.API, policy=policy, now=utcnow()
            )
            return user.id, issued.access_token

        clients = []
        for index in range(args.staff):
            _, staff_token = token(f"ops{index // 5:03d}")
            clients.append(Client(staff_token, None, summary=True))
        prosumer_ids = []
        for m in range(min(args.prosumers, args.meters)):
            user_id, prosumer_token = token(f"fp{m:06d}")
            clients.append(Client(prosumer_token, user_id))
            prosumer_ids.append(user_id)
    engine.dispose()
    return Fleet(serials, keys, gateways, serials[through:], wallets, clients, prosumer_ids)


def _password_digest() -> str:
    from core.auth import hash_password

    return hash_password(DEFAULT_PASSWORD)  # the dashboard's users log in by session token


def sign_intervals(fleet: Fleet, intervals: int, origin: datetime) -> list[dict[str, dict]]:
    """Interval k's body per serial; readings stamped origin + k * 15 min (all past)."""
    keypairs = {serial: _meter_key(serial) for serial in fleet.serials}
    plan = []
    for k in range(intervals):
        at = origin + k * INTERVAL
        stamp = at.isoformat().replace("+00:00", "Z")
        bodies = {}
        for m, serial in enumerate(fleet.serials):
            kwh = f"0.{(m * 7 + k) % 97 + 1:02d}{m % 10}"  # plausible for 15 minutes
            signature = keypairs[serial].sign_message(reading_message(serial, at, Decimal(kwh)))
            bodies[serial] = {
                "meter_serial": serial,
                "kwh_amount": kwh,
                "reading_timestamp": stamp,
                "meter_signature": str(signature),
            }
        plan.append(bodies)
    return plan


# --- sending --------------------------------------------------------------------------------


@dataclass
class Sent:
    requests: Counter[str] = field(default_factory=Counter)  # "individual 201", "batch 200"
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)  # (due, finished), s
    by_kind: Counter[str] = field(default_factory=Counter)  # accepted per kind
    busy: Counter[str] = field(default_factory=Counter)  # seconds each kind was sending


async def send_all(base: str, fleet: Fleet, plan: list[dict[str, dict]], args) -> Sent:
    """Interval by interval, on fresh keep-alive connections each (an idle one would meet
    the server's keep-alive timeout while a slow interval's batches finish)."""
    host, port = base.removeprefix("http://").split(":")
    address = f"{host}:{port}"
    sent = Sent()
    started = time.monotonic()
    for k, bodies in enumerate(plan):
        due = k * args.interval_secs
        await asyncio.sleep(max(0.0, started + due - time.monotonic()))
        singles = [
            request_bytes(
                "POST",
                address,
                "/api/meters/submit-reading",
                json.dumps(bodies[serial]).encode(),
                {"X-API-Key": fleet.keys[serial], "Content-Type": "application/json"},
            )
            for serial in fleet.individual
        ]
        batches = [
            request_bytes(
                "POST",
                address,
                "/api/meters/submit-batch",
                json.dumps({"readings": [bodies[s] for s in share]}).encode(),
                {"X-API-Key": key, "Content-Type": "application/json"},
            )
            for key, share in fleet.gateways
        ]
        begun = time.monotonic()
        await asyncio.gather(
            _send_over(host, int(port), singles, args.connections, "individual", sent, begun),
            _send_over(host, int(port), batches, args.batch_connections, "batch", sent, begun),
        )
        sent.intervals.append((due, time.monotonic() - started))
        say(
            f"interval {k + 1}/{len(plan)} sent by {time.monotonic() - started:.1f} s "
            f"(due at {due:.1f} s); {sent.accepted:,} accepted so far; {load()}"
        )
    return sent


async def _send_over(
    host: str, port: int, requests: list[bytes], width: int, kind: str, sent: Sent, begun: float
) -> None:
    """`requests` over `width` connections; the time this kind took is added to sent.busy."""
    width = max(1, min(width, len(requests)))
    if not requests:
        return
    connections = await asyncio.gather(*(Connection.open(host, port) for _ in range(width)))
    try:
        await asyncio.gather(
            *(_send(c, requests[i::width], kind, sent) for i, c in enumerate(connections))
        )
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    sent.busy[kind] += time.monotonic() - begun


async def _send(connection: Connection, requests: list[bytes], kind: str, sent: Sent) -> None:
    for raw in requests:
        begun = time.perf_counter()
        answer = await connection.send(raw)
        sent.latencies.append(time.perf_counter() - begun)
        sent.requests[f"{kind} {answer.status}"] += 1
        if kind == "individual":
            accepted = int(answer.status == 201)
        else:
            accepted = int(json.loads(answer.body)["accepted"]) if answer.status == 200 else 0
        sent.accepted += accepted
        sent.by_kind[kind] += accepted


# --- the processes --------------------------------------------------------------------------


def start_schedulers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    processes = []
    for index in range(count):
        log = (log_dir / f"scheduler{index}.log").open("w")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "scheduler"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _time_pages(url: str, data_dir: str, users: dict, cases: list, runs: int, out: str) -> None:
    results = dashboard.render_pages(url, Path(data_dir), users, cases, runs)
    Path(out).write_bytes(pickle.dumps(results))


class Probes(threading.Thread):
    """Events written at `rate`/s while the fleet runs, each one's commit time noted right
    after its commit returns (bench/ws_latency.py's measure): one in five for a prosumer,
    the rest staff-only. A reading's own event carries the time its request began, not
    its commit, so it cannot time the feed."""

    def __init__(self, url: str, prosumer_ids: list[int], rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.prosumer_ids, self.rate = url, prosumer_ids, rate
        self.written: dict[int, tuple[int | None, float]] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        engine = create_db_engine(self.url)
        sessions = session_factory(engine)
        n = 0
        while not self.halt.wait(1 / self.rate):
            owner = self.prosumer_ids[n // 5 % len(self.prosumer_ids)] if n % 5 == 0 else None
            with sessions() as session:
                event = publish(session, "bench_probe", {"seq": n}, user_id=owner)
                session.commit()
                self.written[event.id] = (owner, time.time())
            n += 1
        engine.dispose()


class Cpu:
    """CPU seconds of process groups and of the database's backends."""

    def __init__(self, groups: dict[str, list[int]], database: str) -> None:
        self.groups, self.database = groups, database
        self.start = self.sample()

    def sample(self) -> dict[str, float]:
        values = {
            name: sum(_cpu_secs(_pids("-g", str(g))) for g in gs)
            for name, gs in self.groups.items()
        }
        values["postgres"] = _cpu_secs(_pids("-u", "postgres", "-f", f"{self.database}|walwriter"))
        return values

    def per_reading_ms(self, readings: int) -> str:
        end = self.sample()
        return ", ".join(
            f"{name} {1000 * (end[name] - self.start[name]) / max(1, readings):.2f} ms"
            for name in end
        )


# --- the run --------------------------------------------------------------------------------


def run_fleet(admin_url: str, args: argparse.Namespace) -> int:
    failures = []
    with (
        migrated_pg_database(admin_url) as url,
        tempfile.TemporaryDirectory(prefix="fleet-") as scratch,
    ):
        database = make_url(url).database or ""
        say(f"database {database}; {load()}")
        started = time.monotonic()
        fleet = register_fleet(url, args)
        say(
            f"registered {args.meters:,} meters of {args.meters:,} wallets "
            f"({len(fleet.gateways)} gateways hold {args.meters - len(fleet.individual):,}; "
            f"{len(fleet.individual):,} send alone) in {time.monotonic() - started:.1f} s"
        )
        origin = datetime.now(UTC).replace(second=0, microsecond=0)
        origin -= timedelta(minutes=origin.minute % 15) + args.intervals * INTERVAL
        started = time.monotonic()
        plan = sign_intervals(fleet, args.intervals, origin)
        say(
            f"signed {args.meters * args.intervals:,} readings in "
            f"{time.monotonic() - started:.1f} s"
        )
        with embedded_node(slot_ms=400) as rpc_url:
            data_dir = Path(scratch) / "data"
            data_dir.mkdir()
            os.environ.update(
                DATABASE_URL=url,
                DATA_DIR=str(data_dir),
                API_SECRET_KEY=SECRET,
                LOCALNET_PORT=rpc_url.rsplit(":", 1)[1],
                LOG_LEVEL="WARNING",
            )
            app = bootstrap(load_settings())
            minter = build_minter(app, threading.Event())
            started = time.monotonic()
            minter.pipeline.accounts.ensure(fleet.wallets)
            say(
                f"token accounts for {len(fleet.wallets):,} wallets in "
                f"{time.monotonic() - started:.1f} s (before the clock); {load()}"
            )
            with engine_of(url) as engine, engine.connect() as connection:
                bytes_before = connection.execute(
                    text("SELECT pg_database_size(current_database())")
                ).scalar_one()
            schedulers = start_schedulers(2, Path(scratch))
            try:
                with api_server(url, args.api_workers) as (base, api_group, _):
                    result = _measured(url, base, api_group, schedulers, fleet, plan, args, scratch)
            finally:
                stop(schedulers)
            failures += report(url, app, minter, result, bytes_before, args)
            minter.chain.close()
            app.close()
    return 1 if failures else 0


@dataclass
class Measured:
    sent: Sent
    begun: datetime
    sent_secs: float
    drained_secs: float | None
    cpu: str
    pages: list
    ws: list  # (summary client, user id, [(event id, receipt time)]) per client
    probes: dict[int, tuple[int | None, float]]  # probe event id -> (owner, commit time)
    loads: list[str]


def _measured(url, base, api_group, schedulers, fleet, plan, args, scratch) -> Measured:
    database = make_url(url).database or ""
    context = multiprocessing.get_context("spawn")
    ws_base = base.replace("http://", "ws://") + "/ws"
    ready = context.Queue()
    procs, outs = [], []
    shares = [fleet.clients[i :: args.client_procs] for i in range(args.client_procs)]
    timeout = 6 * 3600  # they end on bench_end; a slow run must not cut them off
    for index, share in enumerate(shares):
        outs.append(f"{scratch}/ws{index}.pickle")
        procs.append(
            context.Process(
                target=run_clients,
                daemon=True,
                args=(ws_base, share, ready, outs[-1], len(fleet.prosumer_ids), None, timeout),
            )
        )
        procs[-1].start()
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    connected = 0
    while connected < len(procs):  # summaries are live only: warm up until all are in
        with sessions() as session:
            for owner in fleet.prosumer_ids:
                publish(session, "bench_warmup", {"warmup": True}, user_id=owner)
            session.commit()
        try:
            ready.get(timeout=1)
        except queue.Empty:
            continue
        connected += 1
    say(
        f"{len(fleet.clients)} WebSocket clients connected "
        f"({args.staff} staff on mode=summary, {len(fleet.prosumer_ids)} prosumers)"
    )
    loads = [f"start: {load()}"]
    cpu = Cpu({"api": [api_group], "schedulers": [p.pid for p in schedulers]}, database)
    pages_out = f"{scratch}/pages.pickle"
    users = {"admin": "root", "operator": "ops", "prosumer": "fp000000"}
    cases = dashboard.cases(meter=fleet.serials[7 % len(fleet.serials)])
    pages = context.Process(
        target=_time_pages,
        daemon=True,
        args=(url, f"{scratch}/pages-data", users, cases, PAGES_RUNS, pages_out),
    )
    begun = utcnow()
    clock = time.monotonic()
    pages_timer = threading.Timer(min(60.0, args.interval_secs), pages.start)
    pages_timer.start()
    probes = Probes(url, fleet.prosumer_ids, args.probe_rate)
    probes.start()
    sent = asyncio.run(send_all(base, fleet, plan, args))
    sent_secs = time.monotonic() - clock
    loads.append(f"all sent ({sent_secs:.0f} s): {load()}")
    drained = None
    deadline = time.monotonic() + args.drain_timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            waiting = session.scalar(
                select(func.count()).where(MeterReading.status.in_(("pending", "minting")))
            )
        if not waiting:
            drained = time.monotonic() - clock
            break
        time.sleep(1)
    loads.append(f"drained: {load()}")
    probes.halt.set()
    probes.join()
    cpu_line = cpu.per_reading_ms(sent.accepted)
    pages_timer.cancel()
    if pages.pid is not None:  # started: let it finish its cases
        pages.join(timeout=1800)
    with sessions() as session:
        for owner in fleet.prosumer_ids:
            publish(session, "bench_end", {"end": True}, user_id=owner)
        session.commit()
    for proc in procs:
        proc.join(timeout=120)
    engine.dispose()
    ws = [
        (client.summary, client.user_id, received)
        for share, out in zip(shares, outs, strict=True)
        if Path(out).exists()
        for client, received in zip(share, pickle.loads(Path(out).read_bytes()), strict=True)
    ]
    page_results = pickle.loads(Path(pages_out).read_bytes()) if Path(pages_out).exists() else []
    return Measured(
        sent, begun, sent_secs, drained, cpu_line, page_results, ws, probes.written, loads
    )


class engine_of:
    """An engine as a context manager, disposed at the end."""

    def __init__(self, url: str) -> None:
        self.engine = create_db_engine(url)

    def __enter__(self):
        return self.engine

    def __exit__(self, *exc) -> None:
        self.engine.dispose()


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.50):.3f}, p95 {at(0.95):.3f}, p99 {at(0.99):.3f}, max {ordered[-1]:.3f}"


def report(url, app, minter, result: Measured, bytes_before: int, args) -> list[str]:
    failures = []
    offered = args.meters * args.intervals
    with engine_of(url) as engine, engine.connect() as db:
        one = lambda sql: db.execute(text(sql)).scalar_one()  # noqa: E731
        stored = one("SELECT count(*) FROM meter_readings")
        statuses = dict(
            db.execute(text("SELECT status, count(*) FROM meter_readings GROUP BY status")).all()
        )
        minted = statuses.get("minted", 0)
        units = one(
            "SELECT coalesce(sum(token_base_units), 0) FROM meter_readings WHERE status = 'minted'"
        )
        batch_units = one(
            "SELECT coalesce(sum(total_base_units), 0) FROM mint_batches "
            "WHERE kind = 'mint' AND status = 'confirmed'"
        )
        first, last_in, last_minted = db.execute(
            text("SELECT min(submitted_at), max(submitted_at), max(minted_at) FROM meter_readings")
        ).one()
        latency = db.execute(
            text(
                "SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY "
                "extract(epoch FROM minted_at - submitted_at)) FROM meter_readings "
                "WHERE minted_at IS NOT NULL"
            )
        ).scalar_one()
        per_minute = db.execute(
            text(
                "SELECT m, sum(a), sum(b) FROM (SELECT date_trunc('minute', submitted_at) AS m, "
                "1 AS a, 0 AS b FROM meter_readings UNION ALL "
                "SELECT date_trunc('minute', minted_at), 0, 1 FROM meter_readings "
                "WHERE minted_at IS NOT NULL) AS t GROUP BY m ORDER BY m"
            )
        ).all()
        transactions = db.execute(
            text(
                "SELECT kind, status, count(*) FROM mint_batches "
                "GROUP BY kind, status ORDER BY 1, 2"
            )
        ).all()
        bytes_after = one("SELECT pg_database_size(current_database())")
        readings_bytes = int(
            one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM "
                "pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid "
                "WHERE i.inhparent = 'meter_readings'::regclass"
            )
        )
        events = one("SELECT count(*) FROM events")
        in_flight = db.execute(
            text(
                "SELECT signature, total_base_units FROM mint_batches "
                "WHERE kind = 'mint' AND status = 'signed' AND signature IS NOT NULL"
            )
        ).all()
    supply = minter.chain.token_supply(minter.grx.address)
    # A run stopped before it drained leaves signed batches that may have landed but are
    # not yet recorded (the next scheduler's recovery records them): ask the chain.
    landed = [
        units
        for (_, units), status in zip(
            in_flight,
            minter.chain.signature_statuses([Signature.from_string(s) for s, _ in in_flight]),
            strict=True,
        )
        if status is not None and status.error is None
    ]
    span_in = (last_in - first).total_seconds() if first and last_in else 0
    span_minted = (last_minted - first).total_seconds() if first and last_minted else 0
    sent = result.sent
    print("\n== fleet ==")
    print(
        f"{args.meters:,} meters of {args.meters:,} wallets × {args.intervals} intervals = "
        f"{offered:,} readings, interval every {args.interval_secs:.1f} s (time compressed "
        f"{900 / args.interval_secs:.0f}×); answers: "
        f"{dict(sorted(sent.requests.items()))}"
    )
    print(f"loads: {'; '.join(result.loads)}")
    print(
        f"accepted {sent.accepted:,} (stored {stored:,}) in {result.sent_secs:.1f} s of sending: "
        f"{sent.accepted / max(result.sent_secs, 1e-9):,.0f} readings/s accepted; "
        f"from the first to the last submitted_at {stored / max(span_in, 1e-9):,.0f}/s"
    )
    print(
        "by kind: "
        + "; ".join(
            f"{kind} {sent.by_kind[kind]:,} accepted in {sent.busy[kind]:.1f} s of sending = "
            f"{sent.by_kind[kind] / max(sent.busy[kind], 1e-9):,.0f}/s"
            for kind in ("individual", "batch")
        )
    )
    print(f"request latency (s): {_percentiles(sent.latencies)}")
    print(
        f"minted {minted:,} readings by {span_minted:.1f} s after the first acceptance: "
        f"{minted / max(span_minted, 1e-9):,.0f} readings/s minted sustained; drained "
        + (
            f"{result.drained_secs:.1f} s after the start"
            if result.drained_secs
            else f"NOT within {args.drain_timeout} s"
        )
    )
    print(
        "per minute (accepted / minted): "
        + ", ".join(f"{m:%H:%M} {a}/{b}" for m, a, b in per_minute)
    )
    if latency:
        print(
            f"acceptance -> minted: p50 {latency[0]:.1f} s, p95 {latency[1]:.1f} s, "
            f"p99 {latency[2]:.1f} s"
        )
    print("transactions: " + ", ".join(f"{k} {s} {n}" for k, s, n in transactions))
    lost = offered - stored
    print(
        f"statuses: {dict(sorted(statuses.items()))}; lost {lost} (offered - stored), "
        f"unminted {stored - minted - statuses.get('review', 0) - statuses.get('rejected', 0)}"
    )
    unrecorded = sum(landed)
    doubled = supply - units - unrecorded
    print(
        f"on-chain supply {supply:,} == minted base units {units:,}"
        + (f" + {unrecorded:,} of signed batches landed, not yet recorded" if landed else "")
        + f": {doubled == 0} (doubled {doubled}); confirmed mint batches carry {batch_units:,}"
        + (
            f"; {len(in_flight)} batches still signed, {len(landed)} of them landed"
            if in_flight
            else ""
        )
    )
    grown = bytes_after - bytes_before
    print(
        f"database grew {grown / 1e6:,.0f} MB for {stored:,} readings and {events:,} events = "
        f"{grown / max(stored, 1) * 1e6 / 1e9:.2f} GB per million readings "
        f"(meter_readings partitions with indexes {readings_bytes / 1e6:,.0f} MB = "
        f"{readings_bytes / max(stored, 1) * 1e6 / 1e9:.2f} GB per million)"
    )
    print(f"CPU per accepted reading: {result.cpu}")
    ws_report(result)
    print(f"dashboard pages during the run (AppTest, median / worst ms of {PAGES_RUNS} runs):")
    for label, role, median, high in result.pages:
        flag = "" if median < dashboard.BUDGET_MS else f"  over {dashboard.BUDGET_MS} ms"
        print(f"  {label:<22} {role:<9} {median:>8.0f} {high:>8.0f}{flag}")
    if not result.pages:
        print("  (the pages did not finish: see above)")
    if lost or doubled:
        failures.append("lost or doubled")
    return failures


def ws_report(result: Measured) -> None:
    """Probe commit -> receipt: per event for prosumers (each their own probes), and for
    staff on mode=summary the first summary whose last_id reaches the probe."""
    prosumer, staff, missing = [], [], 0
    probes = sorted(result.probes.items())
    for summary, user_id, received in result.ws:
        if summary:
            marks = sorted(received)
            ids = [event_id for event_id, _ in marks]
            for probe_id, (_, committed) in probes:
                at = bisect.bisect_left(ids, probe_id)
                if at < len(ids):
                    staff.append(marks[at][1] - committed)
                else:
                    missing += 1
            continue
        got = dict(received)
        for probe_id, (owner, committed) in probes:
            if owner == user_id:
                if probe_id in got:
                    prosumer.append(got[probe_id] - committed)
                else:
                    missing += 1
    print(
        f"WebSocket: {len(result.ws)} clients, {len(probes)} probe events committed during the "
        f"run; commit -> receipt, prosumers (their own probes, {len(prosumer):,} deliveries) "
        f"{_ms(prosumer)}; staff on mode=summary ({len(staff):,}, up to 1 s of coalescing) "
        f"{_ms(staff)}; {missing} probes never seen by a client entitled to them"
    )


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {at(0.5):.0f} ms, p95 {at(0.95):.0f} ms, p99 {at(0.99):.0f} ms"


def seeded_dashboards(admin_url: str, counts: list[int], runs: int) -> None:
    for count in counts:
        with (
            tempfile.TemporaryDirectory(prefix="fleet-seed-") as tmp,
            migrated_pg_database(admin_url) as url,
        ):
            engine = create_db_engine(url)
            started = time.monotonic()
            say(f"seeding {count:,} readings; {load()}")
            info = dashboard.seed(engine, count)
            engine.dispose()
            say(
                f"seeded {info.readings:,} readings in {time.monotonic() - started:.0f} s; {load()}"
            )
            results = dashboard.measure(url, Path(tmp) / "data", runs)
        print(
            f"\n== dashboard at {count:,} seeded readings (PostgreSQL, median / worst ms of "
            f"{runs}; {load()}) =="
        )
        for label, role, median, high in results:
            flag = "" if median < dashboard.BUDGET_MS else f"  over {dashboard.BUDGET_MS} ms"
            print(f"  {label:<22} {role:<9} {median:>8.0f} {high:>8.0f}{flag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--intervals", type=int, default=10)
    parser.add_argument("--interval-secs", type=float, help="default: meters / 1,111")
    parser.add_argument("--gateway-share", type=float, default=0.9)
    parser.add_argument("--gateway-size", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--staff", type=int, default=100)
    parser.add_argument("--prosumers", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--probe-rate", type=float, default=5, help="WebSocket probe events/s")
    parser.add_argument(
        "--seed-readings",
        default="1000000,20000000",
        help="comma separated; 0 skips the seeded dashboards",
    )
    parser.add_argument("--seed-runs", type=int, default=3)
    parser.add_argument("--skip-fleet", action="store_true")
    args = parser.parse_args(argv)
    if args.interval_secs is None:
        args.interval_secs = args.meters / FLEET_RATE
    if make_url(args.database_url).get_backend_name() != "postgresql":
        raise SystemExit("the fleet benchmark runs on PostgreSQL (--database-url)")
    say(f"bench.fleet {' '.join(argv or sys.argv[1:])}; {load()}")
    code = 0 if args.skip_fleet else run_fleet(args.database_url, args)
    counts = [int(n) for n in args.seed_readings.split(",") if int(n)]
    seeded_dashboards(args.database_url, counts, args.seed_runs)
    say(f"done; {load()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
