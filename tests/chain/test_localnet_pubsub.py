"""The node's WebSocket pubsub (RPC port + 1) spoken raw, checked against agave's protocol.

Message shapes, commitment order, received notifications, encodings, errors,
a slow client that must not stall anyone, and a clean close on shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from typing import Any

import httpx
import pytest
import zstandard
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.localnet import (
    Localnet,
    build_tx,
    create_mint,
    create_token_accounts,
    funded_keypair,
    memo_ix,
    mint_to_ix,
)

pytestmark = pytest.mark.chain


def ws_url(node: Localnet) -> str:
    return f"ws://127.0.0.1:{node.port + 1}"


class Session:
    """One raw connection: numbered calls, and notifications kept in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = iter(range(1, 10**9))
        self.notes: list[dict[str, Any]] = []

    async def call(self, method: str, *params: Any) -> dict[str, Any]:
        request_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            message["params"] = list(params)
        await self.ws.send(json.dumps(message))
        async with asyncio.timeout(10):
            while True:
                answer = json.loads(await self.ws.recv())
                if answer.get("id") == request_id:
                    return answer
                self.notes.append(answer)

    async def subscribe(self, method: str, *params: Any) -> int:
        answer = await self.call(method, *params)
        assert isinstance(answer.get("result"), int), answer
        return answer["result"]

    async def notes_for(self, sub_id: int, count: int, timeout: float = 15) -> list[dict]:
        async with asyncio.timeout(timeout):
            while (
                len(mine := [n for n in self.notes if n["params"]["subscription"] == sub_id])
                < count
            ):
                self.notes.append(json.loads(await self.ws.recv()))
        return mine[:count]


def send_memo(client: Client, payer: Keypair, text: str) -> str:
    tx = build_tx(client, payer, [memo_ix(text, payer.pubkey())])
    return str(client.send_raw_transaction(bytes(tx)).value)


def test_a_signature_is_notified_at_each_commitment_in_order(localnet: Localnet) -> None:
    client = Client(localnet.url, commitment=Confirmed)
    payer = funded_keypair(client)
    tx = build_tx(client, payer, [memo_ix("levels", payer.pubkey())])
    signature = str(tx.signatures[0])

    async def flow() -> None:
        async with connect(ws_url(localnet)) as ws:
            session = Session(ws)
            subs = {
                level: await session.subscribe(
                    "signatureSubscribe",
                    signature,
                    {"commitment": level, "enableReceivedNotification": level == "finalized"},
                )
                for level in ("processed", "confirmed", "finalized")
            }
            client.send_raw_transaction(bytes(tx))
            finalized = await session.notes_for(subs["finalized"], 2)
            processed = (await session.notes_for(subs["processed"], 1))[0]
            confirmed = (await session.notes_for(subs["confirmed"], 1))[0]
            assert processed == {
                "jsonrpc": "2.0",
                "method": "signatureNotification",
                "params": {
                    "result": {
                        "context": {"slot": processed["params"]["result"]["context"]["slot"]},
                        "value": {"err": None},
                    },
                    "subscription": subs["processed"],
                },
            }
            assert finalized[0]["params"]["result"]["value"] == "receivedSignature"
            assert finalized[1]["params"]["result"]["value"] == {"err": None}
            order = [
                session.notes.index(n) for n in (finalized[0], processed, confirmed, finalized[1])
            ]
            assert order == sorted(order)
            landed = client.get_signature_statuses([tx.signatures[0]]).value[0]
            assert landed is not None
            for note in (processed, confirmed, finalized[1]):
                assert note["params"]["result"]["context"]["slot"] == landed.slot
            # A signature subscription ends with its notification, as on agave.
            again = await session.call("signatureUnsubscribe", subs["processed"])
            assert again["error"] == {"code": -32602, "message": "Invalid subscription id."}

    asyncio.run(flow())


def test_account_encodings_logs_blocks_and_roots(localnet: Localnet) -> None:
    client = Client(localnet.url, commitment=Confirmed)
    payer, authority, holder = funded_keypair(client), Keypair(), Keypair().pubkey()
    mint = create_mint(client, payer, authority.pubkey(), decimals=3)
    (account,) = create_token_accounts(client, payer, mint, [holder])

    async def flow() -> None:
        async with connect(ws_url(localnet)) as ws:
            session = Session(ws)
            key = str(account)
            parsed = await session.subscribe(
                "accountSubscribe", key, {"encoding": "jsonParsed", "commitment": "confirmed"}
            )
            zstd = await session.subscribe(
                "accountSubscribe", key, {"encoding": "base64+zstd", "commitment": "processed"}
            )
            legacy = await session.subscribe("accountSubscribe", key, {"commitment": "processed"})
            logs = await session.subscribe(
                "logsSubscribe", {"mentions": [str(mint)]}, {"commitment": "confirmed"}
            )
            block = await session.subscribe(
                "blockSubscribe",
                {"mentionsAccountOrProgram": str(mint)},
                {"commitment": "confirmed", "transactionDetails": "signatures", "encoding": "json"},
            )
            root = await session.subscribe("rootSubscribe")
            tx = build_tx(
                client, payer, [mint_to_ix(mint, account, authority.pubkey(), 4321)], authority
            )
            client.send_raw_transaction(bytes(tx))
            signature = str(tx.signatures[0])

            note = (await session.notes_for(parsed, 1))[0]["params"]["result"]["value"]
            assert note["data"]["program"] == "spl-token"
            assert note["data"]["parsed"]["info"]["tokenAmount"]["amount"] == "4321"
            raw = (await session.notes_for(zstd, 1))[0]["params"]["result"]["value"]["data"]
            assert raw[1] == "base64+zstd"
            unpacked = zstandard.ZstdDecompressor().decompress(base64.b64decode(raw[0]))
            assert unpacked[64:72] == (4321).to_bytes(8, "little")
            binary = (await session.notes_for(legacy, 1))[0]["params"]["result"]["value"]["data"]
            assert isinstance(binary, str)  # agave's default: a bare base-58 string
            logged = (await session.notes_for(logs, 1))[0]["params"]["result"]["value"]
            assert logged["signature"] == signature and logged["err"] is None
            assert "Program log: Instruction: MintTo" in logged["logs"]
            blocked = (await session.notes_for(block, 1))[0]["params"]["result"]
            assert blocked["value"]["err"] is None and blocked["value"]["block"]["signatures"] == [
                signature
            ]
            assert blocked["context"]["slot"] == blocked["value"]["slot"]
            rooted = (await session.notes_for(root, 1))[0]["params"]["result"]
            assert isinstance(rooted, int)
            for sub in (parsed, zstd, legacy, logs, block, root):
                assert (await session.call("accountUnsubscribe", sub))["result"] is True

    asyncio.run(flow())


def test_bad_subscriptions_answer_as_agave_does(localnet: Localnet) -> None:
    async def flow() -> None:
        async with connect(ws_url(localnet)) as ws:
            session = Session(ws)

            async def error(method: str, *params: Any) -> tuple[int, str]:
                answer = await session.call(method, *params)
                return answer["error"]["code"], answer["error"]["message"]

            assert await error("accountSubscribe", "not-a-key") == (
                -32602,
                "Invalid Request: Invalid pubkey provided",
            )
            assert await error("signatureSubscribe", "xyz") == (
                -32602,
                "Invalid Request: Invalid signature provided",
            )
            two = [str(Keypair().pubkey()), str(Keypair().pubkey())]
            assert await error("logsSubscribe", {"mentions": two}) == (
                -32602,
                "Invalid Request: Only 1 address supported",
            )
            system = "11111111111111111111111111111111"
            assert await error("programSubscribe", system, {"filters": [{"dataSize": 1}] * 5}) == (
                -32602,
                "Too many filters provided; max 4",
            )
            code, message = await error("accountSubscribe", system, {"encoding": "hex"})
            assert code == -32602 and "unknown variant `hex`" in message
            assert await error("blockSubscribe", "all", {"commitment": "processed"}) == (
                -32602,
                "Method does not support commitment below `confirmed`",
            )
            assert await error("slotUnsubscribe", 123456) == (-32602, "Invalid subscription id.")
            assert await error("getBalance", system) == (-32601, "Method not found")
            await ws.send("{not json")
            assert json.loads(await ws.recv())["error"]["code"] == -32700
            version = await session.call("getVersion")
            assert version["result"]["solana-core"]

    asyncio.run(flow())


def test_a_client_that_stops_reading_is_dropped_without_stalling_others(localnet: Localnet) -> None:
    """A reader that stops reading fills its own bounded queue and is cut off; others carry on."""

    async def flow() -> None:
        async with (
            connect(ws_url(localnet), max_queue=1) as stuck,
            connect(ws_url(localnet)) as healthy,
        ):
            # 3,000 slot subscriptions: 3,000 notifications a slot that this client never reads.
            for request_id in range(3000):
                await stuck.send(
                    json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "slotSubscribe"})
                )
            session = Session(healthy)
            slot_sub = await session.subscribe("slotSubscribe")
            gaps, last = [], time.monotonic()
            while len(gaps) < 50:
                note = json.loads(await healthy.recv())
                if note.get("params", {}).get("subscription") == slot_sub:
                    gaps.append(time.monotonic() - last)
                    last = time.monotonic()
            assert max(gaps[1:]) < 1.0, "a stuck client slowed the node's notifications"
            # Reading again, the stuck client finds its connection was closed behind what it missed.
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(30):
                    while True:
                        await stuck.recv()

    asyncio.run(flow())


def test_shutdown_closes_every_connection_cleanly(fresh_localnet: Localnet) -> None:
    async def flow() -> None:
        async with connect(ws_url(fresh_localnet)) as ws:
            session = Session(ws)
            await session.subscribe("slotSubscribe")
            fresh_localnet.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

    asyncio.run(flow())
    assert fresh_localnet.process.wait(10) == 0  # type: ignore[union-attr]


def test_the_rpc_port_refuses_a_websocket_upgrade_as_agave_does(localnet: Localnet) -> None:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    assert httpx.get(localnet.url, headers=headers).status_code == 405
