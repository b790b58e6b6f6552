"""The scheduler's composition root: key, chain client, GRX mint and the mint pipeline."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from core.bootstrap import App
from core.chain.client import ChainClient
from core.chain.errors import RpcUnavailable
from core.chain.factories import mint_instruction_factory
from core.chain.keys import load_or_create_keypair
from core.chain.mint_setup import GrxMint, ensure_grx_mint
from core.minting.pipeline import MintPipeline, MintTarget

log = logging.getLogger(__name__)


@dataclass
class Minter:
    app: App
    chain: ChainClient
    grx: GrxMint
    pipeline: MintPipeline


def wait_for_chain(chain: ChainClient, stop: threading.Event, timeout: float = 120.0) -> None:
    """The node may still be starting (make run starts them together): wait, saying so."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            chain.health()
            return
        except RpcUnavailable as exc:
            if time.monotonic() > deadline or stop.is_set():
                raise
            log.info("waiting for the Solana node: %s", exc)
            stop.wait(1.0)


def build_minter(app: App, stop: threading.Event, **pipeline_options: float) -> Minter:
    settings = app.settings.app
    authority = load_or_create_keypair(settings.effective_authority_keypair_path)
    chain = ChainClient(settings.effective_rpc_url, commitment=settings.solana_commitment)
    wait_for_chain(chain, stop)
    grx = ensure_grx_mint(chain, authority, app.sessions, app.settings)
    log.info(
        "minting GRX mint %s (%s decimals) with authority %s on %s",
        grx.address,
        grx.decimals,
        authority.pubkey(),
        settings.effective_rpc_url,
    )
    factory = mint_instruction_factory(
        settings, mint=grx.address, authority=authority.pubkey(), decimals=grx.decimals
    )
    target = MintTarget(chain, authority, factory, airdrop=settings.uses_embedded_localnet)
    pipeline = MintPipeline(app.sessions, app.config, target, stop=stop, **pipeline_options)
    return Minter(app, chain, grx, pipeline)
