"""Benchmark: event delivery latency to 500 WebSocket clients on PostgreSQL.

    .venv/bin/python -m bench.ws_latency [--database-url postgresql+psycopg://...]
        [--clients 500] [--prosumers 50] [--rate 50] [--seconds 30] [--client-procs 2]
        [--api-workers 1] [--compression none|deflate]

Creates and migrates a fresh database on the server of --database-url (default
TEST_DATABASE_URL), starts `python -m api` on a free port, and connects the
clients from --client-procs processes (bench/ws_clients.py): one per prosumer, the rest staff
(operators, five connections each, the per-user limit). Once every client has
received a warm-up event, this process commits --rate events per second for
--seconds (one in five for a prosumer, the rest staff-only), noting each one's
commit time right after the commit returns (also carried in the payload as
`written_at`, taken just before). Latency is receipt minus that commit time,
per delivery. Every client must receive exactly the events it is entitled to,
once each and in id order. The database is dropped at the end.

Clients offer no compression by default. With `--compression deflate` (what
browsers and the websockets library offer), uvicorn compresses every message
once per client, which roughly doubles the API's CPU per delivery; for this
fan-out of small messages `python -m api` is better off with
ws_per_message_deflate=False.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.databases import migrated_pg_database
from bench.ws_clients import Client, cpu_seconds, run_clients
from core.db.engine import create_db_engine, session_factory
from core.db.models import Role, SessionKind
from core.db.types import utcnow
from core.events import EventType, publish
from core.sessions import SessionPolicy, start_session
from tests.factories import make_user

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-ws-secret-" + "x" * 32
END = "bench_end"


@contextmanager
def api_server(url: str, workers: int) -> Iterator[tuple[str, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": tempfile.mkdtemp(prefix="gtx-wsbench-"),
        "API_PORT": str(port),
        "API_SECRET_KEY": SECRET,
        "ADMIN_PASSWORD": "bench-admin-password",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the API did not start") from None
                time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/ws", process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def make_clients(url: str, count: int, prosumers: int) -> tuple[list[Client], list[int]]:
    engine = create_db_engine(url)
    with session_factory(engine)() as session:
        people = [make_user(session, f"prosumer{i:03d}") for i in range(prosumers)]
        staff_users = [
            make_user(session, f"operator{i:03d}", role=Role.OPERATOR)
            for i in range((count - prosumers + 4) // 5)
        ]
        tokens = {
            user.id: start_session(
                session, user, SECRET, kind=SessionKind.API, policy=SessionPolicy(), now=utcnow()
            ).access_token
            for user in [*people, *staff_users]
        }
    engine.dispose()
    clients = [Client(tokens[p.id], p.id) for p in people]
    for index in range(count - prosumers):
        clients.append(Client(tokens[staff_users[index // 5].id], None))
    return clients, [p.id for p in people]


def write_events(url: str, prosumer_ids: list[int], rate: float, seconds: float) -> dict:
    """Commit events at `rate`/s, then one end marker per prosumer (at the same pace, so
    the tail is not a burst); each id with its owner and its commit time."""
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    written: dict[int, tuple[int | None, float]] = {}
    rng = random.Random(7)
    count = int(rate * seconds)
    plan = [(EventType.METER_READING_RECEIVED.value, n) for n in range(count)]
    plan += [(END, n) for n in range(len(prosumer_ids))]
    started = time.monotonic()
    for step, (kind, n) in enumerate(plan):
        time.sleep(max(0.0, started + step / rate - time.monotonic()))
        if kind == END:
            owner: int | None = prosumer_ids[n]  # tells each client it has everything
        else:
            owner = rng.choice(prosumer_ids) if n % 5 == 0 else None
        with sessions() as session:
            payload = {"seq": n, "written_at": time.time(), "kwh_amount": "1.250000"}
            event = publish(session, kind, payload, user_id=owner)
            session.commit()
            written[event.id] = (owner, time.time())
    engine.dispose()
    return written


def warm_up(url: str, prosumer_ids: list[int]) -> None:
    engine = create_db_engine(url)
    with session_factory(engine)() as session:
        for owner in prosumer_ids:
            publish(session, "bench_warmup", {"warmup": True}, user_id=owner)
        session.commit()
    engine.dispose()


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_latency", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--prosumers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--api-workers", type=int, default=1, help="python -m api --workers")
    parser.add_argument(
        "--compression",
        choices=("deflate", "none"),
        default="none",
        help="permessage-deflate offered by the clients (see the module docstring)",
    )
    args = parser.parse_args(argv)
    compression = None if args.compression == "none" else args.compression
    if make_url(args.database_url).get_backend_name() != "postgresql":
        raise SystemExit("this benchmark runs on PostgreSQL (--database-url)")
    context = multiprocessing.get_context("spawn")
    with (
        migrated_pg_database(args.database_url, "gtx_wsbench_") as url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        clients, prosumer_ids = make_clients(url, args.clients, args.prosumers)
        with api_server(url, args.api_workers) as (base, api_pid):
            ready = context.Queue()
            shares = [clients[i :: args.client_procs] for i in range(args.client_procs)]
            outs = [f"{scratch}/clients{i}.pickle" for i in range(len(shares))]
            procs = [
                context.Process(
                    target=run_clients,
                    args=(base, share, ready, out, len(prosumer_ids), compression),
                    daemon=True,
                )
                for share, out in zip(shares, outs, strict=True)
            ]
            for proc in procs:
                proc.start()
            # The clock starts once every client has its warm-up event (live or replayed).
            warm_up(url, prosumer_ids)
            connected = sum(ready.get(timeout=120) for _ in procs)
            print(
                f"{connected} clients ({len(prosumer_ids)} prosumers, the rest staff) connected to "
                f"`python -m api --workers {args.api_workers}`, compression {args.compression}"
            )
            # Process groups (the API's workers; each client process sets its own).
            pids = [api_pid, *(proc.pid for proc in procs)]
            started, cpu = time.monotonic(), [cpu_seconds(pid) for pid in pids]
            written = write_events(url, prosumer_ids, args.rate, args.seconds)
            elapsed = time.monotonic() - started
            after = [cpu_seconds(pid) for pid in pids]
            busy = [(end - begin) / elapsed for begin, end in zip(cpu, after, strict=True)]
            print(
                f"CPU while writing (share of one core): api {busy[0]:.0%}, "
                f"client processes {', '.join(f'{b:.0%}' for b in busy[1:])}; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            for proc in procs:
                proc.join(timeout=120)
        received = [r for out in outs for r in pickle.loads(Path(out).read_bytes())]
    return report(written, [c for share in shares for c in share], received, elapsed)


def report(written: dict, clients: list[Client], received: list, elapsed: float) -> int:
    latencies: list[float] = []
    expected_total = delivered = wrong = 0
    for client, got in zip(clients, received, strict=True):
        expected = sorted(i for i, (owner, _) in written.items() if client.user_id in (None, owner))
        ids = [event_id for event_id, _ in got]
        expected_total += len(expected)
        delivered += len(ids)
        wrong += ids != expected
        latencies.extend(at - written[i][1] for i, at in got if i in written)
    latencies.sort()
    events = len(written)
    print(
        f"{events} events committed in {elapsed:.1f} s ({events / elapsed:.1f}/s); "
        f"{delivered} deliveries of {expected_total} expected; "
        f"{wrong} clients with a missing, repeated or out-of-order event"
    )
    print(
        f"commit -> receipt latency over {len(latencies)} deliveries: "
        f"p50 {percentile(latencies, 0.50):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    return 0 if wrong == 0 and delivered == expected_total else 1


if __name__ == "__main__":
    sys.exit(main())
