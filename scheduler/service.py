"""The scheduler's composition root: signers, chain client, GRX mint and the mint pipeline."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey

from core.bootstrap import App
from core.certificates.worker import CertificateWorker
from core.chain.certificate_mint import CertificateMint, ensure_certificate_mint
from core.chain.client import ChainClient
from core.chain.errors import RpcUnavailable, SignerUnavailable
from core.chain.factories import mint_instruction_factory
from core.chain.mint_setup import GrxMint, ensure_grx_mint
from core.chain.signature_watch import SignatureWatch
from core.chain.signer_setup import ChainSigners, configured_signer_name, load_signers
from core.events import EventType, publish
from core.minting.pipeline import MintPipeline, MintTarget

log = logging.getLogger(__name__)


@dataclass
class Minter:
    app: App
    chain: ChainClient
    grx: GrxMint
    pipeline: MintPipeline
    signers: ChainSigners
    certificate_mint: CertificateMint
    certificates: CertificateWorker

    @property
    def fee_payer(self) -> Pubkey:
        """The account that pays every fee and rent (what a low-balance alarm watches)."""
        return self.signers.fee_payer_pubkey


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


def wait_for_signers(app: App, stop: threading.Event, timeout: float = 120.0) -> ChainSigners:
    """The signing service may be starting, sealed or unreachable: wait, saying so once."""
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            return load_signers(app.settings.app)
        except SignerUnavailable as exc:
            if not said:
                with app.sessions() as session:
                    publish(
                        session,
                        EventType.SIGNER_UNAVAILABLE,
                        {
                            "signer": configured_signer_name(app.settings.app),
                            "error": str(exc),
                            "error_code": exc.code,
                            "batches_released": 0,
                        },
                    )
                    session.commit()
                said = True
            if time.monotonic() > deadline or stop.is_set():
                raise
            log.info("waiting for the signer: %s", exc)
            stop.wait(1.0)


def build_minter(app: App, stop: threading.Event, **pipeline_options: Any) -> Minter:
    settings = app.settings.app
    signers = wait_for_signers(app, stop)
    authority = signers.authority
    chain = ChainClient(settings.effective_rpc_url, commitment=settings.solana_commitment)
    wait_for_chain(chain, stop)
    grx = ensure_grx_mint(chain, authority, app.sessions, app.settings, payer=signers.fee_payer)
    log.info(
        "minting GRX mint %s (%s decimals) with authority %s (%s), fee payer %s, on %s",
        grx.address,
        grx.decimals,
        authority.pubkey,
        authority.name,
        signers.fee_payer.pubkey,
        settings.effective_rpc_url,
    )
    factory = mint_instruction_factory(
        settings, mint=grx.address, authority=authority.pubkey, decimals=grx.decimals
    )
    ws_url = settings.effective_ws_url
    watch = None if ws_url is None else SignatureWatch(ws_url, settings.solana_commitment)
    target = MintTarget(
        chain,
        authority,
        factory,
        airdrop=settings.uses_embedded_localnet,
        payer=signers.fee_payer if signers.payer_is_separate else None,
        watch=watch,
    )
    pipeline = MintPipeline(app.sessions, app.config, target, stop=stop, **pipeline_options)
    certificate_mint = ensure_certificate_mint(
        chain,
        authority,
        app.sessions,
        settings.effective_rpc_url,
        payer=signers.fee_payer,
        airdrop=settings.uses_embedded_localnet,
    )
    log.info("certificates on mint %s", certificate_mint.address)
    certificates = CertificateWorker(
        app.sessions,
        chain,
        target.signers,
        app.config,
        certificate_mint,
        auto_issue=lambda: settings.certificates_auto_issue,
        stop=stop,
        airdrop=settings.uses_embedded_localnet,
        watch=watch,
        **{
            key: value
            for key, value in pipeline_options.items()
            if key in ("poll_interval", "rebroadcast_interval", "settle_timeout")
        },
    )
    return Minter(app, chain, grx, pipeline, signers, certificate_mint, certificates)
