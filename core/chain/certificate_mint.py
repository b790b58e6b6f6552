"""Bootstrapping the certificate mint like the GRX mint: verified, reused or created, recorded.

The certificate mint is Token-2022 with 6 decimals (one token is one MWh, one
base unit one Wh), NonTransferable, with the registry's authority as both its
mint authority and its PermanentDelegate (core.chain.certificate_instructions
says why). It is recorded in certificate_mints with the supply it had then, so
reconciliation compares the chain with the certificates issued, retired and
cancelled. A recorded mint that has gone missing is refused, never replaced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.chain.certificate_instructions import (
    CERTIFICATE_DECIMALS,
    CERTIFICATE_MINT_SIZE,
    create_certificate_mint,
    permanent_delegate_of,
)
from core.chain.client import ChainClient
from core.chain.errors import BlockhashExpired, MintMismatch, MintNotFound
from core.chain.instructions import TOKEN_2022_PROGRAM_ID, CreateMintParams
from core.chain.mint_setup import FEE_ALLOWANCE, SEND_ATTEMPTS, ensure_sol_balance
from core.chain.signer import Signer, as_signer, sign_transactions
from core.chain.transactions import build_transaction
from core.db.locks import engine_of, exclusive
from core.db.models import CertificateMint as CertificateMintRow

log = logging.getLogger(__name__)

CERTIFICATE_MINT_LOCK = "certificate-mint"  # core.db.locks name for creating it


@dataclass(frozen=True)
class CertificateMint:
    address: Pubkey
    authority: Pubkey  # mint authority and permanent delegate
    bootstrap_supply: int
    created: bool
    decimals: int = CERTIFICATE_DECIMALS
    token_program: Pubkey = TOKEN_2022_PROGRAM_ID


def check_certificate_mint(client: ChainClient, address: Pubkey, authority: Pubkey) -> int:
    """The mint's supply, after checking it is a certificate mint this authority runs."""
    info = client.mint_info(address)
    where = f"the certificate mint {address}"
    if info.token_program != TOKEN_2022_PROGRAM_ID:
        raise MintMismatch(f"{where} is not a Token-2022 mint")
    if info.decimals != CERTIFICATE_DECIMALS:
        raise MintMismatch(f"{where} has {info.decimals} decimals, not {CERTIFICATE_DECIMALS}")
    if info.mint_authority != authority:
        raise MintMismatch(
            f"{where} has mint authority {info.mint_authority}, not the configured signer "
            f"{authority}"
        )
    account = client.account(address)
    delegate = None if account is None else permanent_delegate_of(bytes(account.data))
    if delegate != authority:
        raise MintMismatch(f"{where} has permanent delegate {delegate}, not {authority}")
    return info.supply


def create_certificate_mint_account(
    client: ChainClient, authority: Pubkey, payer: Signer, *, airdrop: bool
) -> Pubkey:
    """A new certificate mint, confirmed (its own key signs once and is dropped)."""
    rent = client.minimum_balance_for_rent_exemption(CERTIFICATE_MINT_SIZE)
    ensure_sol_balance(client, payer.pubkey, rent + FEE_ALLOWANCE, airdrop=airdrop)
    mint = Keypair()
    params = CreateMintParams(
        payer.pubkey, mint.pubkey(), authority, CERTIFICATE_DECIMALS, rent, TOKEN_2022_PROGRAM_ID
    )
    for attempt in range(1, SEND_ATTEMPTS + 1):
        blockhash, last_valid = client.latest_blockhash()
        instructions = create_certificate_mint(params, authority)
        (tx,) = sign_transactions(
            [build_transaction(instructions, payer.pubkey, blockhash)], [payer, mint]
        )
        try:
            client.wait_for_confirmation(client.send_raw(bytes(tx)), last_valid)
        except BlockhashExpired:
            if attempt == SEND_ATTEMPTS:
                raise
            continue
        break
    log.info("created certificate mint %s on %s", mint.pubkey(), client.url)
    return mint.pubkey()


def ensure_certificate_mint(
    client: ChainClient,
    authority: Signer | Keypair,
    sessions: sessionmaker[Session],
    rpc_url: str,
    *,
    payer: Signer | Keypair | None = None,
    airdrop: bool = False,
) -> CertificateMint:
    """The verified certificate mint recorded for `rpc_url`, created the first time."""
    signer = as_signer(authority)
    rpc_url = rpc_url.rstrip("/")
    # Schedulers starting together create one mint: see core.db.locks.
    with exclusive(engine_of(sessions), CERTIFICATE_MINT_LOCK):
        with sessions() as session:
            row = session.scalars(
                select(CertificateMintRow)
                .where(CertificateMintRow.rpc_url == rpc_url)
                .order_by(CertificateMintRow.created_at.desc())
                .limit(1)
            ).first()
            recorded = None if row is None else (row.address, row.bootstrap_supply)
        if recorded is not None:
            address = Pubkey.from_string(recorded[0])
            try:
                check_certificate_mint(client, address, signer.pubkey)
            except MintNotFound as exc:
                raise MintNotFound(
                    f"the certificate mint {address} recorded for {rpc_url} does not exist there: "
                    "the ledger was reset while the database was kept; restore it, or remove the "
                    "database and the ledger together"
                ) from exc
            return CertificateMint(address, signer.pubkey, recorded[1], created=False)
        address = create_certificate_mint_account(
            client, signer.pubkey, as_signer(payer or authority), airdrop=airdrop
        )
        supply = check_certificate_mint(client, address, signer.pubkey)
        with sessions() as session:
            session.add(
                CertificateMintRow(
                    address=str(address),
                    rpc_url=rpc_url,
                    authority=str(signer.pubkey),
                    bootstrap_supply=supply,
                )
            )
            session.commit()
        return CertificateMint(address, signer.pubkey, supply, created=True)
