"""Benchmark: 10,000 meters publishing signed readings through Mosquitto to the MQTT bridge,
on PostgreSQL.

    .venv/bin/python -m bench.mqtt_ingest [--database-url ...] [--meters 10000]
        [--readings-per-meter 1] [--rate 5000 [--rate 1000 ...]] [--bridges 2]

Creates a fresh database on the server of --database-url (default TEST_DATABASE_URL),
migrates it and registers the meters (1,000 prosumers); starts a Mosquitto of its own
on a free port with docs/OPERATIONS.md's settings (persistence off, a queue that
never drops) and --bridges real bridge processes (`python -m mqtt_ingest`, MQTT 5;
more than one: each its own client id, all in one share group, MQTT_SHARE_GROUP, as
`make run` starts MQTT_BRIDGES of them); then:

1. paced, once per --rate: every meter publishes its readings (QoS 1, its own topic)
   at that many readings/s in total, from a few publishing clients; one more client
   collects every ack. Publish -> ack latency is measured per reading on this
   process's clock. A rate the bridges sustain shows their latency; a rate above it
   shows the broker's queue growing;
2. burst: as many again, published as fast as the clients can: the bridges' capacity.

Prints accepted readings/s and publish -> ack p50/p95/p99 per phase, the CPU seconds
per reading of the bridge, Mosquitto, PostgreSQL and this client, and the load
average; asserts that every reading was answered `accepted` and that the database
holds exactly as many readings as were accepted. Readings are signed before the clock
starts. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench.databases import migrated_pg_database
from bench.ingest import DEFAULT_URL, _cpu_secs, _free_port, _pids
from bench.registration import add_prosumer_meters
from core.db.engine import create_db_engine, session_factory
from core.db.models import IngestBridge, MeterReading
from core.meters import hash_api_key, new_api_key
from tests.factories import keypair_for, rfc3339, sign

ROOT = Path(__file__).resolve().parent.parent
SPACING = timedelta(minutes=16)  # beyond the default 15-minute duplicate window
PUBLISHERS = 4
OWNERS = 1000


def register(url: str, meters: int) -> list[str]:
    """`meters` meters of OWNERS prosumers, inserted in bulk (registration is not measured)."""
    engine = create_db_engine(url)
    serials = [f"MQB-{index:05d}" for index in range(meters)]
    with session_factory(engine)() as session:
        add_prosumer_meters(
            session,
            serials,
            [f"mqbench{index:04d}" for index in range(min(OWNERS, meters))],
            lambda serial: {
                "public_key": str(keypair_for(serial).pubkey()),
                "api_key_hash": hash_api_key(new_api_key()),
            },
        )
    engine.dispose()
    return serials


def signed(serials: list[str], rounds: range, start: datetime) -> list[tuple[str, str, bytes]]:
    """(serial, reading_timestamp, payload) per meter and round, round by round."""
    keys = {serial: keypair_for(serial) for serial in serials}
    messages = []
    for round_ in rounds:
        at = start + SPACING * round_
        stamp = rfc3339(at)
        for index, serial in enumerate(serials):
            kwh = f"{(index + round_) % 97 + 1}.{index % 1000:03d}"
            body = {
                "meter_serial": serial,
                "kwh_amount": kwh,
                "reading_timestamp": stamp,
                "meter_signature": sign(keys[serial], serial, at, kwh),
            }
            messages.append((serial, stamp, json.dumps(body).encode()))
    return messages


@contextmanager
def mosquitto() -> Iterator[tuple[int, int]]:
    """A broker of our own, configured as docs/OPERATIONS.md says; (port, pid)."""
    binary = shutil.which("mosquitto")
    if binary is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    directory = Path(tempfile.mkdtemp(prefix="gtx-mqtt-bench-"))
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 1000000\nmax_inflight_messages 0\n"
        "message_size_limit 1048576\nuser root\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _accepts(port), 15, "mosquitto")
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def bridges(url: str, port: int, count: int) -> Iterator[list[int]]:
    """`count` bridge processes (one share group when more than one); their pids."""
    data_dir = tempfile.mkdtemp(prefix="gtx-bench-")
    name = f"bench-bridge-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MQTT_")},
        "DATABASE_URL": url,
        "DATA_DIR": data_dir,
        "MQTT_URL": f"mqtt://127.0.0.1:{port}",
        # Capacity is measured here, not the per-meter reading budget.
        "METER_RATE_LIMIT_PER_MINUTE": "100000",
        "METER_RATE_LIMIT_BURST": "100000",
        "LOG_LEVEL": "WARNING",
    }
    if count > 1:
        env["MQTT_SHARE_GROUP"] = name
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "mqtt_ingest"],
            cwd=ROOT,
            env={**env, "MQTT_CLIENT_ID": f"{name}-{n}" if count > 1 else name},
            start_new_session=True,
        )
        for n in range(1, count + 1)
    ]
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:

            def connected() -> bool:
                session.rollback()
                beats = session.scalars(select(IngestBridge.connected)).all()
                return sum(map(bool, beats)) >= count

            _wait(connected, 60, "every bridge's heartbeat")
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


class Acks:
    """One client subscribed to every meter's acks: when each reading was answered."""

    def __init__(self, port: int) -> None:
        self.at: dict[tuple[str, str], float] = {}
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"acks-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe("gridtokenx/meters/+/acks", qos=1)
        if not subscribed.wait(10):
            raise SystemExit("the ack subscription was not confirmed")

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        ack = json.loads(message.payload)
        serial = message.topic.split("/")[2]
        with self.lock:
            self.at.setdefault((serial, ack.get("reading_timestamp", "")), now)
            self.statuses[ack["status"] if ack["status"] != "rejected" else ack["code"]] += 1

    def count(self) -> int:
        with self.lock:
            return len(self.at)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(
    port: int, messages: list[tuple[str, str, bytes]], rate: float | None
) -> dict[tuple[str, str], float]:
    """Publish from PUBLISHERS clients, each its share at rate / PUBLISHERS (None: flat out)."""
    sent: dict[tuple[str, str], float] = {}
    shares = [messages[i::PUBLISHERS] for i in range(PUBLISHERS)]

    def run(share: list[tuple[str, str, bytes]]) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"meters-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        began = time.monotonic()
        interval = PUBLISHERS / rate if rate else 0.0
        local = {}
        last = None
        for position, (serial, stamp, payload) in enumerate(share):
            if interval:
                due = began + position * interval
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            local[(serial, stamp)] = time.monotonic()
            last = client.publish(f"gridtokenx/meters/{serial}/readings", payload, qos=1)
        if last is not None:
            last.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()
        sent.update(local)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def phase(
    name: str,
    port: int,
    acks: Acks,
    messages: list[tuple[str, str, bytes]],
    rate: float | None,
    cpu_of: dict[str, list[int]],
) -> int:
    before = acks.count()
    cpu_start = {who: _cpu_secs(pids) for who, pids in cpu_of.items()}
    client_start = time.process_time()
    started = time.monotonic()
    sent = publish_all(port, messages, rate)
    _wait(lambda: acks.count() - before >= len(messages), 300, f"every ack of {name}")
    with acks.lock:
        answered = [acks.at[key] for key in sent]
        latencies = sorted(acks.at[key] - at for key, at in sent.items())
    elapsed = max(answered) - started
    cpu = {who: _cpu_secs(pids) - cpu_start[who] for who, pids in cpu_of.items()}
    cpu["client"] = time.process_time() - client_start
    per = ", ".join(f"{who} {1000 * secs / len(messages):.2f} ms" for who, secs in cpu.items())

    def pct(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000

    paced = f"paced at {rate:,.0f}/s" if rate else "flat out"
    print(
        f"{name} ({paced}): {len(messages)} readings answered in {elapsed:.2f} s = "
        f"{len(messages) / elapsed:,.0f} readings/s; publish -> ack p50 {pct(0.50):.1f} ms, "
        f"p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.0f} ms"
        f"\n  CPU per reading: {per}; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return len(messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt_ingest")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--readings-per-meter", type=int, default=1, help="per phase")
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="a paced phase at this many readings/s (repeat for several; default 5000)",
    )
    parser.add_argument(
        "--bridges", type=int, default=1, help="bridge processes on one shared subscription"
    )
    args = parser.parse_args(argv)
    rates: list[float | None] = [*(args.rate or [5000.0]), None]  # None: the burst
    with migrated_pg_database(args.database_url) as url:
        serials = register(url, args.meters)
        per = args.readings_per_meter
        start = datetime.now(UTC).replace(microsecond=0) - SPACING * (len(rates) * per + 1)
        batches = [signed(serials, range(n * per, (n + 1) * per), start) for n in range(len(rates))]
        print(
            f"{args.meters} meters, {' + '.join(str(len(b)) for b in batches)} signed readings; "
            f"{PUBLISHERS} publishing clients, Mosquitto {_mosquitto_version()}, MQTT 5, QoS 1; "
            f"{args.bridges} bridge process(es)"
            + (" on one shared subscription" if args.bridges > 1 else ""),
            flush=True,
        )
        with mosquitto() as (port, broker_pid), bridges(url, port, args.bridges) as bridge_pids:
            acks = Acks(port)
            cpu_of = {
                "bridge": bridge_pids,
                "mosquitto": [broker_pid],
                "postgres": _pids("-u", "postgres"),
            }
            total = 0
            try:
                for rate, messages in zip(rates, batches, strict=True):
                    total += phase("paced" if rate else "burst", port, acks, messages, rate, cpu_of)
            finally:
                acks.close()
            statuses = dict(acks.statuses)
        engine = create_db_engine(url)
        with session_factory(engine)() as session:
            stored = session.scalar(select(func.count()).select_from(MeterReading))
        engine.dispose()
    accepted = statuses.get("accepted", 0)
    print(f"acks {statuses}; accepted {accepted}, stored {stored}", flush=True)
    assert accepted == stored == total, "accepted, stored and sent differ"
    return 0


def _mosquitto_version() -> str:
    result = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split("version")[-1].strip() if first else "?"


if __name__ == "__main__":
    sys.exit(main())
