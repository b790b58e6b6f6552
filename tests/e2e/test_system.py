"""The whole system as `make run` starts it: real processes on free ports.

`python -m launcher` (DEMO=0) starts the localnet, the embedded MQTT broker (no
MQTT_URL), the api, the scheduler, the MQTT bridge and the dashboard. The test acts as
an admin, a meter vendor and a prosumer over HTTP, MQTT and WebSocket only: it
registers a prosumer and two meters, submits signed readings (one meter over HTTP,
the other over MQTT through the embedded broker), waits
for tokens_minted on the prosumer's WebSocket, checks the on-chain balance to the
base unit, checks the dashboard answers, then stops everything with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import websockets
from paho.mqtt.client import MQTTv311
from solders.pubkey import Pubkey

from core.chain.client import ChainClient
from core.chain.instructions import TOKEN_PROGRAM_ID, associated_token_address
from core.units import kwh_to_base_units
from mqtt_ingest.topics import Topics
from tests.factories import keypair_for, signed_reading, wallet_for
from tests.support.localnet import wait_for
from tests.support.mqtt import MeterClient
from tests.support.processes import REPO_ROOT, free_port

pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "e2e-admin-password"
KWH = ["2.01", "0.29", "1.234567"]
MQTT_KWH = "0.5"


def free_ports() -> dict[str, int]:
    """Distinct free ports; the node also binds LOCALNET_PORT + 1 (pubsub), so keep it apart."""
    while True:
        names = ("API_PORT", "DASHBOARD_PORT", "LOCALNET_PORT", "MQTT_PORT")
        ports = {name: free_port() for name in names}
        taken = {ports["API_PORT"], ports["DASHBOARD_PORT"], ports["MQTT_PORT"]}
        pubsub = ports["LOCALNET_PORT"] + 1
        if len(taken) == 3 and ports["LOCALNET_PORT"] not in taken and pubsub not in taken:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", pubsub))
                except OSError:
                    continue
            return ports


@pytest.fixture
def system(tmp_path: Path, database_url: str):
    ports = free_ports()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("TOKENIZATION_", "SOLANA_", "API_", "DASHBOARD_", "LOCALNET_", "MQTT_")
        )
    }
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=database_url,
        DEMO="0",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        LOCALNET_SLOT_MS="100",
        # A few readings never fill a transaction: they go when the oldest waited 2 s.
        TOKENIZATION_MAX_MINT_WAIT_SECS="2",
        PYTHONUNBUFFERED="1",
        **{name: str(port) for name, port in ports.items()},
    )
    log_path = tmp_path / "launcher.log"
    log = log_path.open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        wait_for(
            lambda: "press Ctrl-C" in output() or launcher.poll() is not None,
            timeout=120,
            what="the launcher to start every service",
        )
        assert launcher.poll() is None, output()
        yield {
            **{k.lower(): v for k, v in ports.items()},
            "process": launcher,
            "log": output,
            "data_dir": env["DATA_DIR"],
        }
    finally:
        if launcher.poll() is None:  # a failed test: let the launcher stop its children
            launcher.send_signal(signal.SIGTERM)
            try:
                launcher.wait(30)
            except subprocess.TimeoutExpired:
                launcher.kill()
        for pid in processes_of(env["DATA_DIR"]):
            os.kill(pid, signal.SIGKILL)
        log.close()


def processes_of(data_dir: str) -> list[int]:
    """Live processes started with this DATA_DIR (the children run in their own sessions)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"DATA_DIR={data_dir}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


async def collect_mints(url: str, token: str, readings: int, timeout: float) -> list[dict]:
    """tokens_minted messages of this prosumer until they cover `readings` readings."""
    minted: list[dict] = []
    async with websockets.connect(f"{url}/ws?token={token}&since=0") as socket_:
        async with asyncio.timeout(timeout):
            while sum(len(m["reading_ids"]) for m in minted) < readings:
                message = json.loads(await socket_.recv())
                if message["type"] == "tokens_minted":
                    minted.append(message)
    return minted


def test_meters_to_tokens_through_the_real_processes(system) -> None:
    api = f"http://127.0.0.1:{system['api_port']}"
    with httpx.Client(base_url=api, timeout=10) as http:
        assert http.get("/health").json()["status"] == "ok"
        login = http.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        wallet = wallet_for("e2e-prosumer")
        created = http.post(
            "/api/admin/users",
            headers=admin,
            json={
                "username": "e2e-prosumer",
                "password": "prosumer-password-1",
                "role": "prosumer",
                "wallet_address": wallet,
            },
        )
        assert created.status_code == 201, created.text
        meter_key = keypair_for("meter:E2E-1")
        meter = http.post(
            "/api/admin/meters",
            headers=admin,
            json={
                "serial": "E2E-1",
                "owner_username": "e2e-prosumer",
                "public_key": str(meter_key.pubkey()),
            },
        )
        assert meter.status_code == 201, meter.text
        key = {"X-API-Key": meter.json()["api_key"]}
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        for index, kwh in enumerate(KWH):
            body = signed_reading(
                meter_key, "E2E-1", kwh=kwh, at=start + timedelta(minutes=20 * index)
            )
            answer = http.post("/api/meters/submit-reading", headers=key, json=body)
            assert answer.status_code == 201, answer.text
        mqtt_key = keypair_for("meter:E2E-MQTT")
        created = http.post(
            "/api/admin/meters",
            headers=admin,
            json={
                "serial": "E2E-MQTT",
                "owner_username": "e2e-prosumer",
                "public_key": str(mqtt_key.pubkey()),
            },
        )
        assert created.status_code == 201, created.text
        # Over MQTT, through the broker the launcher started (no MQTT_URL): acked in seconds.
        assert f"mqtt://127.0.0.1:{system['mqtt_port']}" in system["log"]()
        meter_mqtt = MeterClient(
            f"mqtt://127.0.0.1:{system['mqtt_port']}", Topics(), "E2E-MQTT", protocol=MQTTv311
        )
        try:
            body = signed_reading(mqtt_key, "E2E-MQTT", kwh=MQTT_KWH, at=start)
            meter_mqtt.publish(body)
            ack = meter_mqtt.next_ack(timeout=10)
            assert ack["status"] == "accepted", ack
        finally:
            meter_mqtt.close()
        assert http.get("/health").json()["mqtt"]["status"] == "connected"
        prosumer = http.post(
            "/api/auth/login", json={"username": "e2e-prosumer", "password": "prosumer-password-1"}
        )
        token = prosumer.json()["access_token"]

    ws_url = f"ws://127.0.0.1:{system['api_port']}"
    minted = asyncio.run(collect_mints(ws_url, token, len(KWH) + 1, timeout=60))
    expected = sum(kwh_to_base_units(Decimal(k), Decimal("1.0"), 9) for k in [*KWH, MQTT_KWH])
    assert sum(m["tokens_minted"] for m in minted) == expected == 4_034_567_000
    assert {m["wallet_address"] for m in minted} == {wallet}

    with httpx.Client(timeout=10) as http:
        mint = http.get(f"{api}/api/meters/stats", headers={"Authorization": f"Bearer {token}"})
        assert mint.json()["tokens_minted"] == expected
        dashboard = http.get(f"http://127.0.0.1:{system['dashboard_port']}/_stcore/health")
        assert dashboard.status_code == 200
        page = http.get(f"http://127.0.0.1:{system['dashboard_port']}/")
        assert page.status_code == 200 and "streamlit" in page.text.lower()

    mint_address = next(
        line.split("GRX mint ")[1].split()[0]
        for line in system["log"]().splitlines()
        if "GRX mint " in line and "[launcher]" in line
    )
    with ChainClient(f"http://127.0.0.1:{system['localnet_port']}") as chain:
        account = associated_token_address(
            Pubkey.from_string(wallet), Pubkey.from_string(mint_address), TOKEN_PROGRAM_ID
        )
        assert chain.token_balance(account) == expected
        assert chain.token_supply(Pubkey.from_string(mint_address)) == expected

    launcher = system["process"]
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(60) == 0, system["log"]()
    assert "all processes stopped" in system["log"]()
    assert processes_of(system["data_dir"]) == [], "children left running"
