"""The bridge SIGKILLed in the middle of a stream of 2,000 readings, then restarted.

The bridge runs as its real process (`python -m mqtt_ingest`) on PostgreSQL; the
meters publish through Mosquitto. Meters behave as the contract asks: a reading with
no ack is published again (the same signed bytes). Afterwards every reading is stored
once and minted once, and the chain holds exactly what integer arithmetic says.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from core.bootstrap import bootstrap
from core.chain.client import ChainClient
from core.chain.instructions import associated_token_address, token_program_id
from core.db.models import Event, MeterReading, TokenMint, User
from core.db.types import utcnow
from core.ingest_health import bridge_health
from core.settings_store import update_settings
from scheduler.service import build_minter
from tests.factories import make_meter, rfc3339
from tests.support.localnet import wait_for
from tests.support.mqtt import FleetClient
from tests.support.processes import Service

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

METERS, PER_METER = 20, 100
READINGS = METERS * PER_METER


def amount_micro(meter: int, n: int) -> int:
    """The test's own amounts: 0.001 .. 5.000 kWh, exact micro-kWh."""
    return ((meter * 7919 + n * 104_729) % 5_000_000) + 1_000


def test_a_bridge_killed_mid_stream_stores_and_mints_every_reading_once(
    tmp_path, make_settings, pg_url, mosquitto, topics, localnet
) -> None:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": pg_url,
        "LOCALNET_PORT": str(localnet.port),
        "MQTT_URL": mosquitto,
        "MQTT_TOPIC_PREFIX": topics.prefix,
        "MQTT_CLIENT_ID": f"bridge-{uuid.uuid4().hex[:12]}",
        "TOKENIZATION_MAX_MINT_WAIT_SECS": "0",  # mint what is claimed, full or not
    }
    app = bootstrap(make_settings(**env))
    start = utcnow().replace(microsecond=0) - timedelta(hours=30)
    messages: dict[tuple[str, str], bytes] = {}
    expected: Counter[str] = Counter()  # wallet -> base units, 1 kWh = 10**9 at ratio 1
    with app.sessions() as session:
        update_settings(session, app.settings.tokenization, {"batch_size": 1000}, by="t")
        for m in range(METERS):
            keys = make_meter(session, serial=f"KILL-{m:02d}")
            wallet = session.get(User, keys.meter.owner_id).wallet_address
            for n in range(PER_METER):
                micro = amount_micro(m, n)
                at = start + timedelta(minutes=16 * n)
                body = keys.payload(kwh=Decimal(micro).scaleb(-6), at=at)
                messages[(keys.serial, rfc3339(at))] = json.dumps(body).encode()
                expected[wallet] += micro * 1000

    meters = FleetClient(mosquitto, topics, inflight=200)

    answered: dict[tuple[str, str], list[dict]] = {}

    def drain(quiet: float = 0.0) -> None:
        """Collect acks until none came for `quiet` seconds."""
        try:
            while True:
                serial, ack = meters.acks.get(timeout=quiet) if quiet else meters.acks.get_nowait()
                answered.setdefault((serial, ack["reading_timestamp"]), []).append(ack)
        except queue.Empty:
            pass

    def publish(keys: list[tuple[str, str]]) -> None:
        for serial, stamp in keys:
            meters.publish(serial, messages[(serial, stamp)])

    bridge = Service("mqtt_ingest", env, tmp_path / "bridge-1.log").start()
    order = list(messages)
    streamer = threading.Thread(target=lambda: [publish([k]) or time.sleep(0.0005) for k in order])
    try:
        # Subscribed before the stream: the broker keeps messages only for a subscription.
        wait_for(lambda: _bridge_connected(app), timeout=30, what="the bridge's heartbeat")
        streamer.start()
        wait_for(lambda: drain() or len(answered) >= 400, timeout=60, what="the first acks")
        bridge.kill()  # mid-stream: messages in flight, some committed and not yet PUBACKed
        killed_at = len(answered)
        streamer.join(60)
        bridge = Service("mqtt_ingest", env, tmp_path / "bridge-2.log").start()
        deadline = time.monotonic() + 120
        while len(answered) < READINGS and time.monotonic() < deadline:
            drain(quiet=1.5)
            # A meter republishes what got no ack (the broker may drop what it queued
            # beyond its limit while the bridge was down).
            publish([key for key in order if key not in answered])
        assert len(answered) == READINGS, (
            f"{READINGS - len(answered)} unanswered; {bridge.log()[-3000:]}"
        )
        assert killed_at < READINGS
    finally:
        if bridge.running:
            bridge.terminate()
        meters.close()

    statuses = Counter(ack["status"] for replies in answered.values() for ack in replies)
    assert set(statuses) <= {"accepted", "duplicate"}, statuses
    with app.readers() as session:
        rows = session.execute(
            select(User.username, MeterReading.reading_timestamp, MeterReading.id).join(
                User, User.id == MeterReading.user_id
            )
        ).all()
        assert session.scalar(select(func.count()).select_from(MeterReading)) == READINGS
    # Each reading's every ack names the one stored row.
    stored_ids = {r.id for r in rows}
    for key, replies in answered.items():
        assert len({ack["id"] for ack in replies}) == 1, key
    assert {replies[0]["id"] for replies in answered.values()} == stored_ids

    minter = build_minter(app, threading.Event(), poll_interval=0.05, rebroadcast_interval=0.5)
    try:
        wait_for(
            lambda: minter.pipeline.run_cycle() and _minted(app) == READINGS,
            timeout=120,
            what="every reading minted",
        )
        with app.readers() as session:
            events = session.scalars(select(Event).where(Event.type == "tokens_minted")).all()
            mint = session.scalars(select(TokenMint)).one()
        ids = Counter(rid for event in events for rid in event.payload["reading_ids"])
        assert set(ids) == stored_ids and set(ids.values()) == {1}, "a reading minted twice"
        key = Pubkey.from_string(mint.address)
        program = token_program_id(mint.token_program)
        with ChainClient(localnet.url) as chain:
            for wallet, units in expected.items():
                account = associated_token_address(Pubkey.from_string(wallet), key, program)
                assert chain.token_balance(account) == units, wallet
            assert chain.token_supply(key) == mint.bootstrap_supply + sum(expected.values())
    finally:
        minter.pipeline.stop.set()
        minter.chain.close()
        app.close()


def _bridge_connected(app) -> bool:
    with app.readers() as session:
        return any(bridge.connected for bridge in bridge_health(session, utcnow()))


def _minted(app) -> int:
    with app.readers() as session:
        return session.scalar(select(func.count()).where(MeterReading.status == "minted"))
