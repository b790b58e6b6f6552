"""Helpers for minting with a transit-held authority: the oracle and the key search."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import base58
from solders.pubkey import Pubkey

from core.chain.client import ChainClient
from core.chain.instructions import associated_token_address
from tests.support.openbao import OpenBao
from tests.support.seed import wallet_address


def seeded_micro(p_index: int, r_index: int) -> int:
    """The amount tests.support.seed gives reading r of producer p (its formula, restated)."""
    return 1 + (p_index * 7_919 + r_index * 104_729) % 25_000_000


def expected_units(producers: int, per_producer: int, *, namespace: str = "seed") -> dict[str, int]:
    """Base units per wallet at ratio 1 and 9 decimals: micro-kWh × 10^9 / 10^6, exactly."""
    return {
        wallet_address(p, namespace): sum(seeded_micro(p, r) for r in range(per_producer)) * 1000
        for p in range(producers)
    }


def assert_credited(chain: ChainClient, mint: Pubkey, program: Pubkey, expected: dict) -> None:
    for wallet, units in expected.items():
        account = associated_token_address(Pubkey.from_string(wallet), mint, program)
        assert chain.token_balance(account) == units, wallet


def private_key_forms(server: OpenBao, key: str) -> list[bytes]:
    """Every way the transit key's secret could be written down (it must appear in none)."""
    exported = server.client().secrets.transit.export_key(key, key_type="signing-key", version=1)
    secret = base64.b64decode(exported["data"]["keys"]["1"])  # seed ‖ public key
    seed = secret[:32]
    return [
        seed,
        seed.hex().encode(),
        base64.b64encode(seed),
        base64.b64encode(secret),
        base58.b58encode(secret),
        json.dumps(list(secret)).encode(),
        ", ".join(str(b) for b in seed[:16]).encode(),  # a Keypair's repr lists the seed
    ]


def files_containing(root: Path, forms: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: form {i}" for i, form in enumerate(forms) if form in data]
    return hits
