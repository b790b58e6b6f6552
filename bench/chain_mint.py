"""Benchmark: mint 10,000 readings' worth of GRX to 1,000 wallets through a JSON-RPC node.

    .venv/bin/python -m bench.chain_mint                 # starts its own embedded node
    .venv/bin/python -m bench.chain_mint --rpc-url URL   # any node with a faucet

Everything goes over HTTP through core.chain (the packer and ChainClient), as
the scheduler does: wallets' ATAs are created first (not timed with the mints),
then the readings are minted in cycles; a wallet appears once per transaction,
so each cycle mints one reading per wallet. Prints MintTo/s, transactions,
bytes per transaction and an exact check of every balance and of the supply.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from core.chain.client import ChainClient
from core.chain.errors import ChainError
from core.chain.factories import SplMintTo
from core.chain.instructions import batch_memo, token_program_id
from core.chain.mint_setup import create_grx_mint, ensure_token_accounts
from core.chain.packing import build_mint_transaction, chunk_mints, max_mints_per_transaction
from core.chain.transactions import sign_transaction
from core.units import kwh_to_base_units

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def embedded_node(slot_ms: int) -> Iterator[str]:
    """Start `python -m core.chain.localnet` on a fresh ledger; stop it afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as data_dir:
        port = _free_port()
        env = {**os.environ, "DATA_DIR": data_dir, "LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "core.chain.localnet", "--port", str(port)]
        command += ["--data-dir", data_dir, "--slot-ms", str(slot_ms)]
        process = subprocess.Popen(command, cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            with ChainClient(url, timeout=2) as probe:
                while True:
                    try:
                        probe.health()
                        break
                    except ChainError:
                        if process.poll() is not None or time.monotonic() > deadline:
                            raise SystemExit(f"the localnet node did not start on {url}") from None
                        time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def readings(count: int, wallets: int, seed: int) -> list[list[int]]:
    """Base units of `count` readings (0.01..100 kWh, 6 decimals), per wallet, exactly."""
    rng = random.Random(seed)
    per_wallet: list[list[int]] = [[] for _ in range(wallets)]
    for index in range(count):
        kwh = Decimal(rng.randint(10_000, 100_000_000)).scaleb(-6)
        per_wallet[index % wallets].append(kwh_to_base_units(kwh, Decimal(1), 9))
    return per_wallet


@dataclass
class Minted:
    raws: list[bytes]  # every signed transaction, as sent
    pending: list[tuple[Signature, int]]
    send_seconds: float
    confirm_seconds: float
    capacity: int


def mint_readings(
    client: ChainClient,
    factory: SplMintTo,
    authority: Keypair,
    atas: list[Pubkey],
    amounts: list[list[int]],
    args: argparse.Namespace,
) -> Minted:
    """Cycle k mints every wallet's k-th reading; all cycles are sent, then confirmed."""
    capacity = max_mints_per_transaction(factory)
    raws: list[bytes] = []
    pending: list[tuple[Signature, int]] = []

    def send(raw: bytes) -> Signature:
        return client.send_raw(raw, skip_preflight=not args.preflight)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as senders:
        for cycle in range(max(len(wallet) for wallet in amounts)):
            mints = [
                (ata, a[cycle]) for ata, a in zip(atas, amounts, strict=True) if cycle < len(a)
            ]
            blockhash, last_valid = client.latest_blockhash()
            batch = [
                bytes(
                    sign_transaction(
                        build_mint_transaction(
                            factory,
                            chunk,
                            memo_text=batch_memo(len(raws) + index + 1),
                            blockhash=blockhash,
                        ),
                        [authority],
                    )
                )
                for index, chunk in enumerate(chunk_mints(mints, capacity))
            ]
            raws += batch
            pending += [(signature, last_valid) for signature in senders.map(send, batch)]
    sent = time.perf_counter()
    client.wait_for_confirmations(pending, timeout=120, poll_interval=0.02)
    confirmed = time.perf_counter()
    return Minted(raws, pending, sent - started, confirmed - sent, capacity)


def rebroadcast(client: ChainClient, raws: list[bytes], concurrency: int) -> float:
    """Send every signed transaction again, as recovery does; returns the seconds taken."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as senders:
        list(senders.map(lambda raw: client.send_raw(raw, skip_preflight=True), raws))
    return time.perf_counter() - started


def run(url: str, args: argparse.Namespace) -> int:
    program = token_program_id(args.token_program)
    client = ChainClient(url, commitment="confirmed", timeout=30)
    authority = Keypair()
    client.request_airdrop(authority.pubkey(), 1_000 * 10**9)
    mint = create_grx_mint(client, authority, decimals=9, token_program=program, airdrop=True)
    owners = [Keypair().pubkey() for _ in range(args.wallets)]
    started = time.perf_counter()
    atas = ensure_token_accounts(client, authority, owners, mint, program, timeout=120)
    ata_seconds = time.perf_counter() - started

    factory = SplMintTo(mint, authority.pubkey(), program, None if args.unchecked else 9)
    amounts = readings(args.readings, args.wallets, args.seed)
    minted = mint_readings(client, factory, authority, atas, amounts, args)
    expected = [sum(wallet) for wallet in amounts]
    supply = client.token_supply(mint)
    exact = [client.token_balance(ata) for ata in atas] == expected and supply == sum(expected)
    resend_seconds = rebroadcast(client, minted.raws, args.concurrency)
    once = client.token_supply(mint) == supply
    client.close()

    mint_tos = sum(len(wallet) for wallet in amounts)
    seconds = minted.send_seconds + minted.confirm_seconds
    sizes = [len(raw) for raw in minted.raws]
    mode = f"{args.token_program}, {'MintTo' if args.unchecked else 'MintToChecked'}"
    print(f"node               {url} ({mode}, preflight {'on' if args.preflight else 'off'})")
    print(f"token accounts     {len(atas)} created in {ata_seconds:.2f}s")
    print(f"readings           {args.readings} to {args.wallets} wallets, one per wallet per tx")
    print(f"MintTo             {mint_tos} in {seconds:.2f}s = {mint_tos / seconds:,.0f} MintTo/s")
    print(
        f"  of which         {minted.send_seconds:.2f}s build+sign+send "
        f"({args.concurrency} senders), {minted.confirm_seconds:.2f}s until all confirmed"
    )
    print(f"transactions       {len(sizes)} ({minted.capacity} MintTo max per transaction)")
    print(
        f"bytes per tx       min {min(sizes)} / avg {sum(sizes) / len(sizes):.0f} / "
        f"max {max(sizes)} (limit 1232)"
    )
    print(f"supply             {supply} base units, expected {sum(expected)}")
    print(f"exact check        {'OK' if exact else 'MISMATCH'} (every balance and the supply)")
    print(
        f"rebroadcast        all {len(sizes)} again in {resend_seconds:.2f}s: supply "
        f"{'unchanged (credited once)' if once else 'CHANGED'}"
    )
    return 0 if exact and once else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", help="use this node instead of starting one")
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--token-program", default="spl-token", choices=["spl-token", "token-2022"])
    parser.add_argument("--preflight", action="store_true", help="simulate before landing")
    parser.add_argument("--slot-ms", type=int, default=400, help="embedded node's slot time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--unchecked", action="store_true", help="MintTo instead of MintToChecked")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel HTTP senders")
    args = parser.parse_args()
    if args.rpc_url:
        return run(args.rpc_url, args)
    with embedded_node(args.slot_ms) as url:
        return run(url, args)


if __name__ == "__main__":
    sys.exit(main())
