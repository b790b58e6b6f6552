"""Starting the project's own processes (python -m ...) for tests that need the real thing."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_CLEAN = (
    *("TOKENIZATION_", "DATABASE_URL", "SOLANA_", "LOCALNET_", "DATA_DIR", "DEMO", "API_"),
    *("AUTHORITY_", "FEE_PAYER_", "VAULT_", "MQTT_"),
)


class Service:
    """A `python -m <module>` child with its output in a log file (shown when it fails)."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_CLEAN)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO_ROOT,
                env={**base, **self.env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye; what a crash looks like."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and the exit code; a child that hangs is killed and its threads shown."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # the scheduler dumps every thread's stack
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.kill()
            raise AssertionError(
                f"{self.module} still running {timeout:.0f} s after SIGTERM:\n{self.log()[-6000:]}"
            ) from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# Below the kernel's ephemeral range (32768-60999 here): an outgoing connection of any
# process can take an ephemeral port the moment a server frees it, so a server restarted
# on "its" port (the node, the api) must listen on a port no connection is given.
_LISTEN_PORTS = range(20_000, 32_000)


def free_port(count: int = 1) -> int:
    """A TCP port p free now on 127.0.0.1, with p+1 .. p+count-1 free too.

    Drawn at random from _LISTEN_PORTS, so parallel test workers rarely draw the same
    one, and kept outside the ephemeral range so a restart can bind it again."""
    for _ in range(200):
        port = random.randrange(_LISTEN_PORTS.start, _LISTEN_PORTS.stop - count)
        probes = [socket.socket() for _ in range(count)]
        try:
            for offset, probe in enumerate(probes):
                probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return port
    raise RuntimeError(f"no {count} adjacent free ports in {_LISTEN_PORTS}")
