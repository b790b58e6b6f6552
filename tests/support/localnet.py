"""Run the embedded localnet node as a real subprocess, for any test that needs a chain.

    with run_localnet(tmp_path / "data") as node:
        client = Client(node.url)
        ...
        node.kill(signal.SIGKILL)   # crash it
        node.restart()              # same port, same ledger

Fixtures (registered through `pytest_plugins` in tests/conftest.py):
- `localnet`: one node for the whole session; isolate by creating your own keys and mints.
- `fresh_localnet`: a node of your own with an empty ledger.
- `fast_localnet`: like fresh_localnet with 10 ms slots: a blockhash expires in ~1.5 s.

The node's output goes to DATA_DIR/localnet.log (a pipe nobody reads would fill up
and stall it); it is shown when the node fails to start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus, TransactionStatus
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import MemoParams, create_memo
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeMintParams,
    MintToParams,
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    mint_to,
)

from tests.support.processes import free_port

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECS = 30.0
STOP_TIMEOUT_SECS = 10.0
FAST_SLOT_MS = 10
# The shared node runs 4x faster than a cluster: confirmations in 100 ms, finality in 3.2 s.
SESSION_SLOT_MS = 100
_LISTENING = re.compile(r"localnet listening on http://127\.0\.0\.1:(\d+)")


class LocalnetFailed(RuntimeError):
    """The node did not come up (or died); the message carries its log."""


class Localnet:
    """A running node process: `.url`, `.port`, `.data_dir`, `.process`, and its lifecycle."""

    def __init__(self, data_dir: Path, *, port: int | None, slot_ms: int) -> None:
        self.data_dir = data_dir
        self.slot_ms = slot_ms
        self.port = port or free_port(2)  # the RPC port and the pubsub port after it
        self.log_path = data_dir / "localnet.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {**os.environ, "DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "core.chain.localnet",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--slot-ms",
            str(self.slot_ms),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(log_offset)

    def _new_log(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _wait_ready(self, log_offset: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalnetFailed(
                    f"localnet exited with {self.process.returncode} while starting:\n"
                    + self._new_log(log_offset)
                )
            found = _LISTENING.search(self._new_log(log_offset))
            if found and self._healthy(int(found.group(1))):
                self.port = int(found.group(1))
                return
            time.sleep(0.02)
        self.process.kill()
        self.process.wait()
        raise LocalnetFailed(
            f"localnet not healthy after {START_TIMEOUT_SECS}s:\n" + self._new_log(log_offset)
        )

    @staticmethod
    def _healthy(port: int) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return json.loads(response.read()).get("result") == "ok"
        except (OSError, urllib.error.URLError, ValueError):
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> int:
        """Send `signum` and wait for the process to end; its exit code."""
        assert self.process is not None
        if self.running:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop(self) -> int:
        """A clean shutdown (SIGTERM); its exit code (0 when clean)."""
        if self.process is None:
            return 0
        return self.kill(signal.SIGTERM)

    def restart(self) -> None:
        """Stop if running, then start again on the same port and ledger."""
        if self.running:
            self.stop()
        self._start()

    def log(self) -> str:
        return self._new_log(0)


@contextmanager
def run_localnet(
    data_dir: Path, *, port: int | None = None, slot_ms: int = 400
) -> Iterator[Localnet]:
    node = Localnet(data_dir, port=port, slot_ms=slot_ms)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    with run_localnet(tmp_path_factory.mktemp("localnet"), slot_ms=SESSION_SLOT_MS) as node:
        yield node


@pytest.fixture
def fresh_localnet(tmp_path: Path) -> Iterator[Localnet]:
    with run_localnet(tmp_path / "localnet-data") as node:
        yield node


@pytest.fixture
def fast_localnet(tmp_path: Path) -> Iterator[Localnet]:
    with run_localnet(tmp_path / "localnet-fast", slot_ms=FAST_SLOT_MS) as node:
        yield node


# Transaction helpers for tests that drive a node through solana-py.

SOL = 1_000_000_000


def wait_for(predicate: Callable[[], T | None], *, timeout: float = 10.0, what: str = "") -> T:
    """Poll until `predicate` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


def confirm(
    client: Client, signature: Signature, level: str = "confirmed", timeout: float = 10.0
) -> TransactionStatus:
    """Wait until the signature reaches `level` (processed, confirmed, finalized)."""
    wanted = _LEVELS.index(level)

    def reached() -> TransactionStatus | None:
        status = client.get_signature_statuses([signature], True).value[0]
        if status is None or status.confirmation_status is None:
            return None
        return status if _rank(status.confirmation_status) >= wanted else None

    return wait_for(reached, timeout=timeout, what=f"{signature} to be {level}")


_LEVELS = ("processed", "confirmed", "finalized")


def _rank(status: TransactionConfirmationStatus) -> int:
    return int(status)  # solders orders them Processed=0, Confirmed=1, Finalized=2


def build_tx(
    client: Client, payer: Keypair, instructions: Sequence[Instruction], *signers: Keypair
) -> VersionedTransaction:
    blockhash = client.get_latest_blockhash(Confirmed).value.blockhash
    message = Message.new_with_blockhash(list(instructions), payer.pubkey(), blockhash)
    return VersionedTransaction(message, [payer, *signers])


def send(client: Client, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
    opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=Confirmed)
    return client.send_raw_transaction(bytes(tx), opts).value


def send_and_confirm(client: Client, tx: VersionedTransaction) -> Signature:
    signature = send(client, tx)
    status = confirm(client, signature)
    assert status.err is None, status.err
    return signature


def funded_keypair(client: Client, lamports: int = 10 * SOL) -> Keypair:
    keypair = Keypair()
    confirm(client, client.request_airdrop(keypair.pubkey(), lamports).value)
    return keypair


def create_mint(client: Client, payer: Keypair, authority: Pubkey, decimals: int = 9) -> Pubkey:
    mint = Keypair()
    rent = client.get_minimum_balance_for_rent_exemption(MINT_LEN).value
    instructions = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=rent,
                space=MINT_LEN,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint(
            InitializeMintParams(
                decimals=decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                mint_authority=authority,
                freeze_authority=None,
            )
        ),
    ]
    send_and_confirm(client, build_tx(client, payer, instructions, mint))
    return mint.pubkey()


def create_token_accounts(
    client: Client, payer: Keypair, mint: Pubkey, owners: Sequence[Pubkey]
) -> list[Pubkey]:
    """Associated token accounts for `owners`, ten per transaction."""
    for start in range(0, len(owners), 10):
        instructions = [
            create_associated_token_account(payer.pubkey(), owner, mint)
            for owner in owners[start : start + 10]
        ]
        send_and_confirm(client, build_tx(client, payer, instructions))
    return [get_associated_token_address(owner, mint) for owner in owners]


def mint_to_ix(mint: Pubkey, destination: Pubkey, authority: Pubkey, amount: int) -> Instruction:
    return mint_to(
        MintToParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=mint,
            dest=destination,
            mint_authority=authority,
            amount=amount,
        )
    )


def memo_ix(text: str, signer: Pubkey) -> Instruction:
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=signer, message=text.encode()))
