"""`python -m simulator`: the demo fleet of signed meters.

Logs in as the admin (ADMIN_PASSWORD, or the password the API saved under
DATA_DIR/secrets/admin_password), creates or reuses the demo users (an operator
and two prosumers with wallets) and four meters, backfills the last hours
through submit-batch, then reports live. `--transport mqtt` publishes every meter's
readings to the MQTT broker (MQTT_URL) instead; `mixed` (the demo's) sends two of
the four meters over MQTT and two over HTTP. The demo logins are written once to
DATA_DIR/demo-logins.txt (0600); the console says where, never the passwords.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from core.config import ConfigError, load_settings
from core.users import admin_password_file
from simulator.client import ApiClient
from simulator.fleet import FleetStore, ensure_meters, ensure_users, logins_notice
from simulator.gridtokenx import BRIDGE_METERS, GATEWAY, BridgeFleet
from simulator.mqtt_transport import MqttMeters
from simulator.runner import Simulator

# Over MQTT in the mixed demo: Lisbon and Honolulu, ten hours apart, so at most hours
# one of them has sun; the HTTP pair (Chiang Mai, New York) covers the day too.
MIXED_MQTT_SERIALS = frozenset({"SIM-ALICE-LIS", "SIM-BOB-HNL"})


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--api-url", help="default http://API_HOST:API_PORT")
    parser.add_argument("--backfill-hours", type=float, default=6.0, help="history to send first")
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between a meter's live readings (at least the duplicate window + 1 s)",
    )
    parser.add_argument("--once", action="store_true", help="one live cycle, then exit")
    parser.add_argument(
        "--transport",
        choices=("http", "mqtt", "mixed"),
        default="http",
        help="how meters report: HTTP, MQTT (MQTT_URL), or mixed (two of each)",
    )
    parser.add_argument(
        "--protocol",
        choices=("ours", "gridtokenx"),
        default="ours",
        help="ours: the demo fleet's signed readings; gridtokenx: two meters in GridTokenX's "
        "bridge form (plaintext and encrypted) through one gateway key",
    )
    parser.add_argument(
        "--tick", type=float, default=5.0, help="seconds between GridTokenX ticks (--protocol)"
    )
    parser.add_argument(
        "--wait-for-owners",
        type=float,
        default=0.0,
        help="gridtokenx: wait this long for the demo fleet to create its owners instead of "
        "creating them (make run starts both simulators at once)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"simulator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.app.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per HTTP request would drown the simulator's own reports.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = settings.app
    client = ApiClient(args.api_url or f"http://{app.api_host}:{app.api_port}")
    mqtt: MqttMeters | None = None
    try:
        client.wait_until_up()
        password = app.admin_password
        if not password:
            password_file = admin_password_file(app)
            if not password_file.exists():
                print(f"simulator: set ADMIN_PASSWORD or start the API first ({password_file})")
                return 1
            password = password_file.read_text(encoding="utf-8").strip()
        client.login(app.admin_username, password)
        store = FleetStore(app.data_dir)
        if args.protocol == "gridtokenx" and args.wait_for_owners > 0:
            if not _owners_appear(client, args.wait_for_owners):
                print("simulator: the demo owners never appeared", file=sys.stderr)
                return 1
            return _run_gridtokenx(client, store, args)
        users = store.users()
        ensure_users(client, users)
        if args.protocol == "gridtokenx":
            return _run_gridtokenx(client, store, args)
        fleet = ensure_meters(client, store)
        if store.write_logins((app.admin_username, password), users):
            print(f"simulator: {logins_notice(store.logins_file)}", flush=True)
        window = int(client.config()["duplicate_window_secs"])
        mqtt = _mqtt_meters(args.transport, fleet, app)
        simulator = Simulator(
            client, store, fleet, window_secs=window, interval_secs=args.interval, mqtt=mqtt
        )
        if mqtt is not None:
            print(
                f"simulator: {len(mqtt.acks)} meters report over MQTT "
                f"({', '.join(sorted(mqtt.acks))})",
                flush=True,
            )
        if simulator.cadence.total_seconds() > args.interval:
            print(
                f"simulator: TOKENIZATION_DUPLICATE_WINDOW_SECS is {window} s, so each meter "
                f"reports every {simulator.cadence.total_seconds():.0f} s",
                flush=True,
            )
        if args.backfill_hours > 0:
            counts = simulator.backfill(args.backfill_hours)
            print(
                f"simulator: backfilled {args.backfill_hours:g} h: {counts.accepted} accepted, "
                f"{counts.duplicate} already stored, {counts.rejected} rejected",
                flush=True,
            )
        if args.once:
            counts = simulator.cycle()
            print(f"simulator: one cycle: {counts.accepted} accepted", flush=True)
            return 0
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print(f"simulator: {len(fleet)} meters reporting live", flush=True)
        simulator.run_live(stop)
        return 0
    finally:
        client.close()
        if mqtt is not None:
            mqtt.close()


def _owners_appear(client: ApiClient, timeout_secs: float) -> bool:
    owners = {meter.owner for meter in BRIDGE_METERS}
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        names = {user["username"] for user in client.call("GET", "/api/admin/users")}
        if owners <= names:
            return True
        time.sleep(1)
    return False


def _run_gridtokenx(client: ApiClient, store: FleetStore, args: argparse.Namespace) -> int:
    bridge = BridgeFleet(client, store)
    bridge.ensure()
    if args.once:
        statuses = bridge.tick(datetime.now(UTC), timedelta(seconds=args.tick))
        print(f"simulator: one GridTokenX tick: {statuses}", flush=True)
        return 0 if all(status in (200, 202) for status in statuses.values()) else 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(
        f"simulator: {len(BRIDGE_METERS)} GridTokenX meters ticking every {args.tick:g} s "
        f"through gateway {GATEWAY}",
        flush=True,
    )
    bridge.run(stop, args.tick)
    return 0


def _mqtt_meters(transport: str, fleet: list, app: Any) -> MqttMeters | None:
    if transport == "http":
        return None
    serials = [
        meter.serial for meter in fleet if transport == "mqtt" or meter.serial in MIXED_MQTT_SERIALS
    ]
    meters = MqttMeters(
        app.effective_mqtt_url, serials, protocol=app.mqtt_protocol, prefix=app.mqtt_topic_prefix
    )
    if not meters.wait_until_up(60):
        where = urlsplit(app.effective_mqtt_url)
        print(f"simulator: no MQTT broker at {where.hostname}:{where.port} yet", flush=True)
    return meters


if __name__ == "__main__":
    sys.exit(main())
