"""Benchmark: the embedded node minting at full speed with 1,100 pubsub subscriptions open.

    .venv/bin/python -m bench.pubsub_load

1. Without subscribers: 20,000 MintToChecked (1,000 transactions of 20) to 1,000
   wallets over HTTP, 4 senders, as bench.chain_mint; prints MintTo/s.
2. The same again with another 20,000 while a separate process holds one
   WebSocket with 1,000 signatureSubscribe (one per transaction, processed)
   and 100 accountSubscribe (100 of the wallets' token accounts, processed).
   Prints MintTo/s and commit -> notification latency per signature.

The node answers sendTransaction only once the transaction's ledger commit is
done, and releases the notification at that same moment, so "commit" is taken
as the instant the sender has its answer (CLOCK_MONOTONIC is shared by the two
processes). A notification may even arrive first: such are counted at 0 ms and
reported. The send -> notification time, which includes execution and the
commit itself, is printed too as an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from bench.chain_mint import embedded_node, readings
from bench.mint_pipeline import percentile
from core.chain.client import ChainClient
from core.chain.factories import SplMintTo
from core.chain.instructions import batch_memo, token_program_id
from core.chain.mint_setup import create_grx_mint, ensure_token_accounts
from core.chain.packing import build_mint_transaction, chunk_mints, max_mints_per_transaction
from core.chain.transactions import sign_transaction

SIGNATURES = 1000
ACCOUNTS = 100
WALLETS = 1000


def signed_batches(
    client: ChainClient, factory: SplMintTo, authority: Keypair, atas: list[Pubkey], seed: int
) -> list[bytes]:
    """1,000 signed transactions of 20 MintToChecked each (a wallet once per transaction)."""
    amounts = readings(SIGNATURES * 20, WALLETS, seed)
    capacity = max_mints_per_transaction(factory)
    raws: list[bytes] = []
    for cycle in range(max(len(a) for a in amounts)):
        blockhash, _ = client.latest_blockhash()
        mints = [(ata, a[cycle]) for ata, a in zip(atas, amounts, strict=True) if cycle < len(a)]
        for chunk in chunk_mints(mints, capacity):
            tx = build_mint_transaction(
                factory, chunk, memo_text=batch_memo(seed * 10_000 + len(raws)), blockhash=blockhash
            )
            raws.append(bytes(sign_transaction(tx, [authority])))
    return raws[:SIGNATURES]


def send_all(
    client: ChainClient, raws: list[bytes]
) -> tuple[float, dict[str, tuple[float, float]]]:
    """Seconds to send everything, and per signature (sent at, answered at)."""
    times: dict[str, tuple[float, float]] = {}

    def send(raw: bytes) -> None:
        started = time.monotonic()
        signature = client.send_raw(raw, skip_preflight=True)
        times[str(signature)] = (started, time.monotonic())

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as senders:
        list(senders.map(send, raws))
    return time.perf_counter() - started, times


def subscriber(ws_url: str, signatures: list[str], accounts: list[str], pipe: Connection) -> None:
    """A separate process: one connection, 1,100 subscriptions, receipt times by signature."""
    from websockets.asyncio.client import connect

    async def run() -> None:
        heard: dict[str, float] = {}
        account_notes = 0
        async with connect(ws_url, max_size=None, compression=None) as ws:
            by_sub: dict[int, str] = {}
            requests = [
                ("signatureSubscribe", [s, {"commitment": "processed"}]) for s in signatures
            ]
            requests += [
                ("accountSubscribe", [a, {"commitment": "processed", "encoding": "base64"}])
                for a in accounts
            ]
            for request_id, (method, params) in enumerate(requests):
                message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
                await ws.send(json.dumps(message))
            while len(by_sub) < len(requests):
                answer = json.loads(await ws.recv())
                by_sub[answer["result"]] = requests[answer["id"]][1][0]
            pipe.send("subscribed")
            deadline = time.monotonic() + 120
            while len(heard) < len(signatures) and time.monotonic() < deadline:
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=5)
                except TimeoutError:
                    continue
                now = time.monotonic()
                note = json.loads(text)
                if note.get("method") == "signatureNotification":
                    heard[by_sub[note["params"]["subscription"]]] = now
                elif note.get("method") == "accountNotification":
                    account_notes += 1
        pipe.send((heard, account_notes))

    asyncio.run(run())


def run(url: str) -> int:
    program = token_program_id("spl-token")
    client = ChainClient(url, commitment="confirmed", timeout=30)
    authority = Keypair()
    client.request_airdrop(authority.pubkey(), 1_000 * 10**9)
    mint = create_grx_mint(client, authority, decimals=9, token_program=program, airdrop=True)
    owners = [Keypair().pubkey() for _ in range(WALLETS)]
    atas = ensure_token_accounts(client, authority, owners, mint, program, timeout=120)
    factory = SplMintTo(mint, authority.pubkey(), program, 9)

    quiet = signed_batches(client, factory, authority, atas, seed=1)
    quiet_secs, _ = send_all(client, quiet)
    client.wait_for_confirmations(
        [(transaction_signature_of(raw), None) for raw in quiet[-5:]], timeout=60
    )

    busy = signed_batches(client, factory, authority, atas, seed=2)
    signatures = [str(transaction_signature_of(raw)) for raw in busy]
    watched = [str(ata) for ata in atas[:ACCOUNTS]]
    ws_url = f"ws://127.0.0.1:{int(url.rsplit(':', 1)[1]) + 1}"
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=subscriber, args=(ws_url, signatures, watched, theirs))
    child.start()
    if not ours.poll(60) or ours.recv() != "subscribed":
        raise SystemExit("the subscriber did not subscribe")
    busy_secs, times = send_all(client, busy)
    heard, account_notes = ours.recv() if ours.poll(180) else ({}, 0)
    child.join(30)
    # Once more without subscribers, so machine load drifting over the run shows.
    after_secs, _ = send_all(client, signed_batches(client, factory, authority, atas, seed=3))
    client.close()

    mint_tos = SIGNATURES * 20
    latency = [max(0.0, heard[s] - times[s][1]) * 1000 for s in signatures if s in heard]
    early = sum(1 for s in signatures if s in heard and heard[s] < times[s][1])
    upper = [(heard[s] - times[s][0]) * 1000 for s in signatures if s in heard]

    def rate(secs: float) -> str:
        return f"{mint_tos} MintTo in {secs:.2f}s = {mint_tos / secs:,.0f} MintTo/s"

    print(f"node                {url}, 1,000 wallets, 20 MintToChecked per transaction, 4 senders")
    print(f"without subscribers {rate(quiet_secs)} (before), {rate(after_secs)} (after)")
    print(f"with 1,100 subs     {rate(busy_secs)}")
    print(f"                    ({SIGNATURES} signatureSubscribe + {ACCOUNTS} accountSubscribe)")
    print(f"notifications       {len(heard)} of {SIGNATURES} signatures; {account_notes} account")
    if latency:
        p50, p99 = percentile(latency, 50), percentile(latency, 99)
        print(f"commit -> notified  p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latency):.1f} ms")
        print(f"                    ({early} arrived before the HTTP answer: counted as 0 ms)")
        p50, p99 = percentile(upper, 50), percentile(upper, 99)
        print(
            f"send -> notified    p50 {p50:.1f} ms, p99 {p99:.1f} ms (includes execution, commit)"
        )
    return 0 if len(heard) == SIGNATURES else 1


def transaction_signature_of(raw: bytes) -> Signature:
    return VersionedTransaction.from_bytes(raw).signatures[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slot-ms", type=int, default=400)
    args = parser.parse_args()
    with embedded_node(args.slot_ms) as url:
        return run(url)


if __name__ == "__main__":
    sys.exit(main())
