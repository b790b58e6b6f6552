"""`python -m pages` (the dashboard `make run` starts) as a real process: a body over its
limit is refused before it is read, silent and idle connections are closed, headers
have a deadline. Every wait is on a condition with a deadline."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import REPO_ROOT, free_port

HEADER_TIMEOUT_SECS = 2
KEEP_ALIVE_SECS = 2


@pytest.fixture(scope="module")
def dashboard(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("dashboard-limits")
    shutil.copyfile(request.getfixturevalue("sqlite_template"), directory / "dashboard.db")
    url = f"sqlite:///{directory / 'dashboard.db'}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TOKENIZATION_", "HTTP_"))},
        "DATABASE_URL": url,
        "DATA_DIR": str(directory / "data"),
        "DASHBOARD_PORT": str(port),
        "SOLANA_RPC_URL": "http://127.0.0.1:9",
        "HTTP_HEADER_TIMEOUT_SECS": str(HEADER_TIMEOUT_SECS),
        "HTTP_KEEP_ALIVE_SECS": str(KEEP_ALIVE_SECS),
        "LOG_LEVEL": "WARNING",
    }
    log = directory / "dashboard.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "pages"], cwd=REPO_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"python -m pages exited: {log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not answer: {Path(log).read_text()}")
            time.sleep(0.1)  # polling the health endpoint, not synchronising on time
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
    return False


def test_a_body_over_the_limit_is_refused_before_it_is_read(dashboard: int) -> None:
    with socket.create_connection(("127.0.0.1", dashboard), timeout=10) as sock:
        sock.sendall(b"POST /_stcore/upload_file/x/y HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 500000000\r\n\r\n")  # fmt: skip
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]


def test_silent_and_idle_connections_are_closed(dashboard: int) -> None:
    with socket.create_connection(("127.0.0.1", dashboard), timeout=10) as silent:
        assert _closed_within(silent, HEADER_TIMEOUT_SECS + 5)
    with socket.create_connection(("127.0.0.1", dashboard), timeout=10) as idle:
        idle.sendall(b"GET /_stcore/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_within(idle, KEEP_ALIVE_SECS + 5)
    with socket.create_connection(("127.0.0.1", dashboard), timeout=10) as slow:
        slow.sendall(b"GET /_stcore/health HTTP/1.1\r\n")  # headers never finished
        assert _closed_within(slow, HEADER_TIMEOUT_SECS + 5)
