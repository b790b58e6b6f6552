"""Entry point of `make run` (python -m launcher)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from core.config import ConfigError, Settings, load_settings
from core.db.migrate import upgrade
from launcher.supervisor import Service, Supervisor, say

REPO = Path(__file__).resolve().parents[1]
HEALTH_RPC = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode()


def _built(relative: str) -> bool:
    return (REPO / relative).exists()


def planned_services(settings: Settings) -> tuple[list[Service], list[str]]:
    """The services to start, in order, and the names of those not built yet."""
    app = settings.app
    python = sys.executable
    candidates: list[tuple[bool, str, Service]] = [
        (
            app.uses_embedded_localnet,
            "core/chain/localnet/__main__.py",
            Service(
                "localnet", [python, "-m", "core.chain.localnet"], app.localnet_url, HEALTH_RPC
            ),
        ),
        (
            True,
            "api/__main__.py",
            Service("api", [python, "-m", "api"], f"http://{app.api_host}:{app.api_port}/health"),
        ),
        (True, "scheduler/__main__.py", Service("scheduler", [python, "-m", "scheduler"])),
        (
            True,
            "app.py",
            Service(
                "dashboard",
                [
                    python,
                    "-m",
                    "streamlit",
                    "run",
                    str(REPO / "app.py"),
                    "--server.address",
                    app.dashboard_host,
                    "--server.port",
                    str(app.dashboard_port),
                    "--server.headless",
                    "true",
                    "--browser.gatherUsageStats",
                    "false",
                ],
                f"http://{app.dashboard_host}:{app.dashboard_port}/_stcore/health",
            ),
        ),
        (app.demo, "simulator/__main__.py", Service("simulator", [python, "-m", "simulator"])),
    ]
    services, missing = [], []
    for wanted, path, service in candidates:
        if not wanted:
            continue
        (services if _built(path) else missing).append(service if _built(path) else service.name)
    return services, missing


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        for variable, value, allowed in exc.problems:
            say(f"invalid configuration: {variable}={value!r}: {allowed}")
        return 2
    settings.app.data_dir.mkdir(parents=True, exist_ok=True)
    say(f"data directory: {settings.app.data_dir.resolve()}")
    upgrade(settings.app.effective_database_url)
    say("database migrated to the latest schema")

    services, missing = planned_services(settings)
    if missing:
        say(f"not built yet, not started: {', '.join(missing)}")
    supervisor = Supervisor(dict(os.environ))

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for service in services:
            say(f"starting {service.name}")
            if not supervisor.start(service):
                say(f"{service.name} failed to start; stopping")
                return 1
        say(f"dashboard: http://{settings.app.dashboard_host}:{settings.app.dashboard_port}")
        say("press Ctrl-C to stop everything")
        supervisor.watch()
    except KeyboardInterrupt:
        say("stopping")
    finally:
        supervisor.stop()
        say("all processes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
