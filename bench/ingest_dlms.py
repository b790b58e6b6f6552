"""The GridTokenX phases of bench/ingest.py: their DLMS frames through one gateway key.

Meters registered with hex keys (their simulator's derivation) and, for the
encrypted phase, their AES key sealed with the API's DATA_DIR wrapping key; one
gateway holds them all. Each client is one keep-alive connection sending its
meters' 5-second ticks one after the other to POST /v1/private-network/ingest;
frames are signed (and sealed) before the clock starts. A 202 is an accepted
sample; every sample is stored and settled into its interval in its request.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.lean_http import drive, request_bytes
from bench.registration import add_prosumer_meters, numbered
from core.db.engine import create_db_engine, session_factory
from core.db.models import TelemetrySample
from core.device_keys import sealed_device_key
from core.gateways import create_gateway
from core.meters import hash_api_key, new_api_key, parse_public_key
from core.secrets import ensure_secret
from core.settlement import interval_bounds
from tests.gridtokenx import simulator as sim

TICK = timedelta(seconds=5)


def register_fleet(url: str, data_dir: Path, count: int, prefix: str, *, encrypted: bool) -> str:
    """`count` GridTokenX meters ({prefix}-00000, ...) behind one gateway; its key.

    Owners and meters are inserted in bulk (registration is not what is measured; one
    register_meter per meter took minutes on a loaded machine); the keys are parsed
    and sealed as registration does, and the gateway is created by core.gateways.
    """
    wrap, _ = ensure_secret(data_dir / "secrets" / "device_key_wrap", lambda: secrets.token_hex(32))
    engine = create_db_engine(url)
    serials, owners = numbered(prefix, count)
    with session_factory(engine)() as session:
        add_prosumer_meters(
            session,
            serials,
            owners,
            lambda serial: {
                "public_key": parse_public_key(sim.public_key_hex(serial)),
                "api_key_hash": hash_api_key(new_api_key()),
                "enc_key": (
                    sealed_device_key(bytes.fromhex(wrap), serial, sim.aes_key(serial).hex())
                    if encrypted
                    else None
                ),
                "encryption_required": encrypted,
            },
        )
        key = create_gateway(session, f"{prefix}-HEADEND", serials).api_key
    engine.dispose()
    return key


def frames(serials: list[str], ticks: int, now: datetime, *, encrypted: bool) -> list[list[bytes]]:
    """Per meter, its ticks (oldest first) as JSON bodies; nets alternate day and night."""
    counter = time.time_ns() // 1000
    per_meter = []
    for serial in serials:
        bodies = []
        for tick in range(ticks):
            at = now - TICK * (ticks - tick)
            generated = 0.0125 if tick % 2 else 0.0
            kwargs = {"generated": generated, "consumed": 0.004, "at": at}
            if encrypted:
                body = sim.encrypted(serial, counter + tick, **kwargs)
            else:
                body = sim.plain(serial, **kwargs)
            bodies.append(json.dumps(body).encode())
        per_meter.append(bodies)
    return per_meter


async def dlms(base: str, key: str, per_meter: list[list[bytes]], clients: int, phase, cpu) -> None:
    """`clients` connections share the meters; each sends its meters' ticks in order."""
    url = make_url(base.replace("http://", "http+raw://"))
    host, port = url.host or "127.0.0.1", int(url.port or 80)
    headers = {"X-API-KEY": key, "Content-Type": "application/json"}
    work: list[list[bytes]] = [[] for _ in range(clients)]
    for index, bodies in enumerate(per_meter):
        work[index % clients].extend(
            request_bytes("POST", f"{host}:{port}", sim.URL, body, headers) for body in bodies
        )
    await drive(host, port, work, phase, cpu, ok=202)


def stored_samples(url: str) -> int:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(TelemetrySample)).scalar_one()
    engine.dispose()
    return count


def now_for_ticks(ticks: int, interval_secs: int = 900) -> datetime:
    """Now, or the end of the last settlement interval when `ticks` ticks before now would
    cross into this one: a meter's samples all land in one interval, so no phase closes
    its whole fleet's intervals (every meter writing a reading) by the clock's chance."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, _ = interval_bounds(now - TICK, interval_secs)
    return now if now - TICK * ticks >= start else start
