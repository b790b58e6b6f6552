"""`make run` (python -m launcher): migrate, prepare, start and supervise every process.

Order: migrate the database; create the first admin; start the embedded node
(unless SOLANA_RPC_URL names another cluster); create the key and the GRX mint;
start the embedded MQTT broker (unless MQTT_URL names a broker); then the api, the
scheduler, the MQTT bridge, the dashboard and, with DEMO=1, the demo fleet.
Ctrl-C (or SIGTERM) stops every child; a child that dies is reported and restarted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

from core.bootstrap import bootstrap
from core.config import ConfigError, Settings, load_settings, redacted
from core.db.migrate import upgrade
from core.errors import DomainError
from core.file_modes import secure_data_dir
from launcher.setup import prepare_admin, prepare_mint
from launcher.supervisor import Service, Supervisor, say
from simulator.fleet import logins_notice

HEALTH_RPC = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode()
# The demo meters report every few seconds; the default 15-minute duplicate window
# would let each of them report only four times an hour.
DEMO_DUPLICATE_WINDOW_SECS = "4"
# Four demo meters never fill a transaction; the default 60 s wait would hide the minting.
DEMO_MAX_MINT_WAIT_SECS = "3"


def demo_environment(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment the children get, and notes about what the launcher chose."""
    env = dict(environ)
    notes = []
    demo = env.get("DEMO", "0").lower() in ("1", "true", "yes", "on")
    if demo and "TOKENIZATION_DUPLICATE_WINDOW_SECS" not in env:
        env["TOKENIZATION_DUPLICATE_WINDOW_SECS"] = DEMO_DUPLICATE_WINDOW_SECS
        notes.append(
            f"demo: TOKENIZATION_DUPLICATE_WINDOW_SECS={DEMO_DUPLICATE_WINDOW_SECS} so the "
            "demo meters can report every 5 s (set it yourself to keep the default 900)"
        )
    if demo and "TOKENIZATION_MAX_MINT_WAIT_SECS" not in env:
        env["TOKENIZATION_MAX_MINT_WAIT_SECS"] = DEMO_MAX_MINT_WAIT_SECS
        notes.append(
            f"demo: TOKENIZATION_MAX_MINT_WAIT_SECS={DEMO_MAX_MINT_WAIT_SECS} so tokens appear "
            "within seconds although four meters never fill a transaction (set it yourself to "
            "keep the default 60, which packs a real fleet's readings into full transactions)"
        )
    return env, notes


def services(settings: Settings) -> list[Service]:
    app = settings.app
    python = sys.executable
    planned = [
        Service(
            "api",
            [python, "-m", "api"],
            f"http://{app.api_host}:{app.api_port}/health",
        ),
        Service("scheduler", [python, "-m", "scheduler"]),
        *bridge_services(settings),
        Service(
            "dashboard",
            # app.py's st.App under the serving limits (pages/__main__.py); the same
            # application `streamlit run app.py` serves.
            [python, "-m", "pages"],
            f"http://{app.dashboard_host}:{app.dashboard_port}/_stcore/health",
        ),
    ]
    if app.demo:
        # Two meters report over MQTT, two over HTTP: both doors in the demo.
        planned.append(Service("simulator", [python, "-m", "simulator", "--transport", "mixed"]))
        # Two meters in GridTokenX's own form (plaintext and encrypted, one gateway key).
        planned.append(
            Service(
                "gridtokenx-meters",
                [python, "-m", "simulator", "--protocol", "gridtokenx", "--wait-for-owners", "120"],
            )
        )
    return planned


def bridge_services(settings: Settings) -> list[Service]:
    """The MQTT bridge, or MQTT_BRIDGES of them on one shared subscription.

    Each of several bridges has its own client id (`<MQTT_CLIENT_ID>-<n>`, its own
    persistent session) and joins the share group MQTT_SHARE_GROUP (default: the
    client id), so the broker hands each reading to one of them. The embedded broker
    (amqtt) has no shared subscriptions: with it, one bridge.
    """
    app = settings.app
    count = app.mqtt_bridges if app.mqtt_url else 1
    argv = [sys.executable, "-m", "mqtt_ingest"]
    if count == 1:
        return [Service("mqtt", argv)]
    group = app.mqtt_share_group or app.mqtt_client_id
    return [
        Service(
            f"mqtt-{n}",
            argv,
            env={"MQTT_CLIENT_ID": f"{app.mqtt_client_id}-{n}", "MQTT_SHARE_GROUP": group},
        )
        for n in range(1, count + 1)
    ]


def free_port_from(port: int, tries: int = 50) -> int:
    """`port`, or the next one that is free on 127.0.0.1."""
    for candidate in range(port, min(port + tries, 65_536)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise DomainError(f"no free port for the embedded MQTT broker in {port}..{port + tries - 1}")


def start_embedded_broker(supervisor: Supervisor, port: int) -> str | None:
    """Start the embedded broker on `port` or the next free one; the URL children use."""
    chosen = free_port_from(port)
    if chosen != port:
        say(f"port {port} is taken; the embedded MQTT broker uses {chosen}")
    broker = Service(
        "broker",
        [sys.executable, "-m", "mqtt_ingest.embedded_broker", "--port", str(chosen)],
        f"tcp://127.0.0.1:{chosen}",
    )
    if not supervisor.start(broker):
        return None
    url = f"mqtt://127.0.0.1:{chosen}"
    # The bridge and the simulator connect to it; amqtt speaks MQTT 3.1.1 only.
    supervisor.base_env.update({"MQTT_URL": url, "MQTT_PROTOCOL": "3.1.1"})
    return url


def wait_for_file(path: Path, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text(encoding="utf-8")
        time.sleep(0.2)
    return None


def main() -> int:
    env, notes = demo_environment(dict(os.environ))
    os.environ.update(env)
    try:
        settings = load_settings()
    except ConfigError as exc:
        for variable, value, allowed in exc.problems:
            say(f"invalid configuration: {variable}={value!r}: {allowed}")
        return 2
    for note in notes:
        say(note)
    app_settings = settings.app
    secure_data_dir(app_settings.data_dir, app_settings.sqlite_path)
    say(f"data directory: {app_settings.data_dir.resolve()}")
    upgrade(app_settings.effective_database_url)
    say("database migrated to the latest schema")
    app = bootstrap(settings)
    supervisor = Supervisor(env)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        admin = prepare_admin(app)
        if admin and admin.generated_password:
            say(
                f"first admin '{admin.username}' created; password (shown once, saved 0600 "
                f"in {admin.password_file}): {admin.generated_password}"
            )
        if app_settings.uses_embedded_localnet:
            say(f"starting the embedded Solana node on {app_settings.localnet_url}")
            localnet = Service(
                "localnet", [sys.executable, "-m", "core.chain.localnet"],
                app_settings.localnet_url, HEALTH_RPC,
            )  # fmt: skip
            if not supervisor.start(localnet):
                return 1
        else:
            say(f"using the Solana cluster at {app_settings.effective_rpc_url}")
        grx, authority = prepare_mint(app)
        verb = "created" if grx.created else "using"
        say(f"{verb} GRX mint {grx.address} ({grx.decimals} decimals), authority {authority}")
        if app_settings.mqtt_url:
            mqtt_url = app_settings.effective_mqtt_url
            say(f"using the MQTT broker at {redacted(settings)['MQTT_URL']}")
        else:
            mqtt_url = start_embedded_broker(supervisor, app_settings.mqtt_port)
            if mqtt_url is None:
                return 1
            if app_settings.mqtt_bridges > 1:
                say(
                    f"MQTT_BRIDGES={app_settings.mqtt_bridges} needs a broker with shared "
                    "subscriptions (MQTT_URL, e.g. Mosquitto 2); the embedded one gets one bridge"
                )
        for service in services(settings):
            say(f"starting {service.name}")
            if not supervisor.start(service):
                return 1
        say(f"dashboard: http://{app_settings.dashboard_host}:{app_settings.dashboard_port}")
        say(f"api:       http://{app_settings.api_host}:{app_settings.api_port}/docs")
        if app_settings.uses_embedded_localnet:
            port = app_settings.localnet_port
            say(f"solana:    http://127.0.0.1:{port} (pubsub ws://127.0.0.1:{port + 1})")
        if not app_settings.mqtt_url:
            say(f'mqtt:      {mqtt_url} (embedded broker; topics in docs/API.md "MQTT")')
        if app_settings.demo:
            logins = app_settings.data_dir / "demo-logins.txt"
            if wait_for_file(logins, timeout=30) is not None:
                say(logins_notice(logins))
        say("press Ctrl-C to stop everything")
        supervisor.watch()
    except KeyboardInterrupt:
        say("stopping")
    except DomainError as exc:
        say(f"cannot start: {exc}")
        return 1
    finally:
        supervisor.stop()
        app.close()
        say("all processes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
