"""DATA_DIR 0700, the SQLite database with its -wal/-shm and the node's ledger 0600:
at creation by the real processes, and fixed (with a warning naming the file) at start."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.bootstrap import bootstrap
from core.chain.localnet.ledger import Ledger
from core.config import Settings
from core.db.migrate import upgrade
from tests.support.localnet import run_localnet, wait_for
from tests.support.processes import Service, free_port


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual 022: without our care, files would be created 0644 and folders 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _answers(url: str) -> bool | None:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 503) or None
    except httpx.TransportError:
        return None


def test_a_real_start_creates_everything_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'gridtokenx.db'}"
    upgrade(url)  # what `make migrate` / the launcher does first
    port = free_port()
    env = {
        "DATA_DIR": str(data),
        "DATABASE_URL": url,
        "API_PORT": str(port),
        "SOLANA_RPC_URL": "http://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
    }
    api = Service("api", env, tmp_path / "api.log").start()
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=60, what="the api")
        assert api.running, api.log()
        database = data / "gridtokenx.db"
        files = [database, data / "gridtokenx.db-wal", data / "gridtokenx.db-shm"]
        files += sorted((data / "secrets").iterdir())  # the API secret, the first admin's password
        assert len(files) >= 5, files
        assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert (_mode(data), _mode(data / "secrets")) == (0o700, 0o700)
    finally:
        api.terminate()
    assert "readable by other users" not in api.log()

    with run_localnet(data) as node:
        assert node.running
        ledger_dir = data / "localnet"
        ledger_files = [path for path in ledger_dir.iterdir() if path.name.startswith("ledger")]
        assert any(path.name.endswith("-wal") for path in ledger_files), ledger_files
        assert {path.name: _mode(path) for path in ledger_files} == {
            path.name: 0o600 for path in ledger_files
        }
        assert _mode(ledger_dir) == 0o700


def test_a_start_fixes_what_others_could_read_and_names_it(
    tmp_path: Path, make_settings, caplog: pytest.LogCaptureFixture, open_umask: None
) -> None:
    # What an older version left behind: a 0755 DATA_DIR and a 0644 database.
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    database = data / "gridtokenx.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    database.chmod(0o644)
    wal = data / "gridtokenx.db-wal"
    with sqlite3.connect(database) as held:  # a WAL file others could read, as SQLite leaves it
        held.execute("PRAGMA journal_mode=WAL")
        held.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
        if wal.exists():
            wal.chmod(0o644)
        settings: Settings = make_settings(DATA_DIR=str(data), DATABASE_URL=url)
        with caplog.at_level(logging.WARNING, logger="core.file_modes"):
            bootstrap(settings).close()
        assert _mode(data) == 0o700 and _mode(database) == 0o600
        if wal.exists():
            assert _mode(wal) == 0o600
    warnings = [record.getMessage() for record in caplog.records]
    assert any(str(database) in line and "0644" in line for line in warnings), warnings
    assert any(line.startswith(str(data) + " had mode 0755") for line in warnings), warnings


def test_a_ledger_opened_again_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, open_umask: None
) -> None:
    path = tmp_path / "localnet" / "ledger.db"
    Ledger(path).close()
    assert (_mode(path), _mode(path.parent)) == (0o600, 0o700)
    path.chmod(0o644)
    path.parent.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="core.file_modes"):
        Ledger(path).close()
    assert (_mode(path), _mode(path.parent)) == (0o600, 0o700)
    assert sum(str(path) in record.getMessage() for record in caplog.records) == 1
