"""Solana's own SDKs drive the embedded node through their high-level flows, unmodified.

@solana/web3.js 1.x with @solana/spl-token and @solana/kit run as Node.js scripts
(tests/conformance/js, installed by `.ci/run` with `npm ci`); solana-py's
AsyncClient and websocket_api run here. Each flow's results are checked against
the chain's own answers. One node serves the whole module. Under CI=true a
missing Node.js or npm install fails these tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.websocket_api import connect
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    SignatureNotification,
    SlotNotification,
    SubscriptionResult,
)
from solders.signature import Signature

from tests.support.localnet import Localnet, run_localnet

pytestmark = pytest.mark.chain

JS = Path(__file__).parent / "js"
SCRIPT_TIMEOUT_SECS = 90


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    with run_localnet(tmp_path_factory.mktemp("conformance"), slot_ms=100) as running:
        yield running


@pytest.fixture(scope="module")
def node_js() -> str:
    binary = shutil.which("node")
    installed = (JS / "node_modules" / "@solana" / "web3.js").is_dir()
    if binary and installed:
        return binary
    reason = "Node.js is not installed" if not binary else "run `npm ci` in tests/conformance/js"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the SDK conformance tests need Node.js and its packages: {reason}")
    pytest.skip(reason)


def run_script(node_js: str, script: str, url: str) -> dict:
    done = subprocess.run(
        [node_js, script, url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECS,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


async def token_amount(url: str, account: str) -> str:
    async with AsyncClient(url, Confirmed) as client:
        return (await client.get_token_account_balance(Pubkey.from_string(account))).value.amount


def test_web3_js_and_spl_token(node: Localnet, node_js: str) -> None:
    found = run_script(node_js, "web3_flows.mjs", node.url)
    assert found["airdropErr"] is None
    # Without pubsub web3.js waited ~60 s and gave up (TransactionExpiredBlockheightExceeded).
    assert found["confirmMs"] < 10_000
    assert found["seenAmount"] == "1000000"  # onAccountChange, decoded by spl-token's layout
    assert found["logsSignature"] == found["mintSig"] and found["logsErr"] is None  # onLogs
    assert found["history"][:2] == [found["transferTokens"], found["mintSig"]]
    assert (found["parsedType"], found["parsedAmount"]) == ("mintTo", "1000000")
    assert found["friendTokens"] == "250000"

    async def check() -> None:
        async with AsyncClient(node.url, Confirmed) as client:
            supply = (await client.get_token_supply(Pubkey.from_string(found["mint"]))).value
            assert supply.amount == "1000000"
            status = (
                await client.get_signature_statuses([Signature.from_string(found["mintSig"])])
            ).value
            assert status[0] is not None and status[0].err is None

    asyncio.run(check())


def test_kit(node: Localnet, node_js: str) -> None:
    found = run_script(node_js, "kit_flows.mjs", node.url)
    assert found["friendLamports"] == found["balance"] == "1000000000"
    assert int(found["slot"]) > 0
    assert found["airdropMs"] < 10_000

    async def check() -> None:
        async with AsyncClient(node.url, Confirmed) as client:
            statuses = await client.get_signature_statuses(
                [
                    Signature.from_string(found["airdropSig"]),
                    Signature.from_string(found["transferSig"]),
                ]
            )
            assert [s is not None and s.err is None for s in statuses.value] == [True, True]

    asyncio.run(check())


async def _next(ws, kind: type, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """The next message of `kind` (solana-py parses each into solders' typed messages)."""
    async with asyncio.timeout(timeout):
        while True:
            for message in await ws.recv():
                if isinstance(message, kind):
                    return message


async def _collect(ws, kinds: tuple[type, ...], timeout: float = 10.0) -> dict:  # type: ignore[no-untyped-def]
    """The first message of each of `kinds`, in whatever order they come."""
    seen: dict[type, object] = {}
    async with asyncio.timeout(timeout):
        while len(seen) < len(kinds):
            for message in await ws.recv():
                if isinstance(message, kinds):
                    seen.setdefault(type(message), message)
    return seen


def test_solana_py_async_client_and_websocket_api(node: Localnet) -> None:
    ws_url = f"ws://127.0.0.1:{node.port + 1}"

    async def flow() -> None:
        payer = Keypair()
        async with AsyncClient(node.url, Confirmed) as client, connect(ws_url) as ws:
            await ws.slot_subscribe()
            slot_sub = (await _next(ws, SubscriptionResult)).result
            assert (await _next(ws, SlotNotification)).result.slot > 0
            await ws.slot_unsubscribe(slot_sub)

            await ws.account_subscribe(payer.pubkey(), Confirmed, "base64")
            account_sub = (await _next(ws, SubscriptionResult)).result
            await ws.logs_subscribe(RpcTransactionLogsFilterMentions(payer.pubkey()), Confirmed)
            logs_sub = (await _next(ws, SubscriptionResult)).result
            system = Pubkey.from_string("11111111111111111111111111111111")
            await ws.program_subscribe(system, Confirmed, "base64", filters=[0])
            program_sub = (await _next(ws, SubscriptionResult)).result

            signature = (await client.request_airdrop(payer.pubkey(), 10**9)).value
            await ws.signature_subscribe(signature, Confirmed)
            await _next(ws, SubscriptionResult)

            kinds = (
                SignatureNotification,
                AccountNotification,
                LogsNotification,
                ProgramNotification,
            )
            seen = await _collect(ws, kinds)
            assert seen[SignatureNotification].result.value.err is None
            account = seen[AccountNotification]
            assert account.subscription == account_sub and account.result.value.lamports == 10**9
            logs = seen[LogsNotification]
            assert logs.subscription == logs_sub and logs.result.value.signature == signature
            program = seen[ProgramNotification]
            assert program.subscription == program_sub
            assert program.result.value.account.owner == system  # the faucet or the payer
            balance = (await client.get_balance(payer.pubkey())).value
            assert balance == 10**9  # the chain agrees with what was notified
            await ws.account_unsubscribe(account_sub)
            await ws.logs_unsubscribe(logs_sub)
            await ws.program_unsubscribe(program_sub)

    asyncio.run(flow())
