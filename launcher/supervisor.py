"""A small process supervisor: start children in order, prefix their output, stop them cleanly.

Why not honcho alone: the children have an order (the scheduler needs the node
and a migrated database) and readiness checks, and a crashed child must be
reported loudly and restarted, not hidden.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.error import URLError

COLOURS = ("36", "33", "35", "32", "34", "31")
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Service:
    name: str
    argv: list[str]
    ready_url: str | None = None
    ready_payload: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class _Child:
    service: Service
    colour: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0


def say(message: str) -> None:
    print(f"\033[1m[launcher]\033[0m {message}", flush=True)


def _accepts_tcp(url: str) -> bool:
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def wait_ready(url: str, payload: bytes | None, timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll a health URL until it answers 2xx (a tcp://host:port URL: until it accepts a
    connection), the child dies, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        if url.startswith("tcp://"):
            if _accepts_tcp(url):
                return True
            time.sleep(0.2)
            continue
        request = urllib.request.Request(  # noqa: S310 - loopback URL built by us
            url, data=payload, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return True
        except (URLError, OSError):
            pass
        time.sleep(0.2)
    return False


class Supervisor:
    def __init__(self, base_env: dict[str, str]) -> None:
        self.base_env = base_env
        self.children: list[_Child] = []
        self.stopping = threading.Event()

    def start(self, service: Service, ready_timeout: float = 60.0) -> bool:
        child = _Child(service, COLOURS[len(self.children) % len(COLOURS)])
        self.children.append(child)
        self._spawn(child)
        if service.ready_url is None:
            return True
        ready = wait_ready(
            service.ready_url,
            service.ready_payload,
            ready_timeout,
            lambda: child.process is not None and child.process.poll() is None,
        )
        if not ready:
            say(f"{service.name} did not become ready at {service.ready_url} (see its output)")
        return ready

    def _spawn(self, child: _Child) -> None:
        env = {**self.base_env, **child.service.env, "PYTHONUNBUFFERED": "1"}
        child.process = subprocess.Popen(  # noqa: S603 - argv built from our own modules
            child.service.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        threading.Thread(target=self._pump, args=(child, child.process), daemon=True).start()

    def _pump(self, child: _Child, process: subprocess.Popen[bytes]) -> None:
        prefix = f"\033[{child.colour}m{child.service.name:>10} |\033[0m "
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            sys.stdout.write(prefix + line.decode("utf-8", "replace"))
            sys.stdout.flush()

    def watch(self) -> None:
        """Block until stopped; report and restart children that die."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None:
                    continue
                code = process.returncode
                delay = RESTART_DELAYS[min(child.restarts, len(RESTART_DELAYS) - 1)]
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0  # it ran a while: a fresh crash, not a loop
                child.restarts += 1
                say(
                    f"\033[31m{child.service.name} exited with code {code}\033[0m; "
                    f"restarting in {delay:.0f}s (restart #{child.restarts})"
                )
                if self.stopping.wait(delay):
                    return
                self._spawn(child)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every child (newest first), then SIGKILL what is left after `grace`."""
        self.stopping.set()
        for child in reversed(self.children):
            process = child.process
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.service.name} did not stop in {grace:.0f}s; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
