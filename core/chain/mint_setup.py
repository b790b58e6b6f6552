"""Bootstrapping the GRX mint and the wallets' token accounts, idempotently.

`ensure_grx_mint` runs at every start: it verifies a configured mint, reuses
the one recorded for this RPC URL, or creates one, and records it in
token_mints with the supply it had then, so reconciliation can compare the
chain with the minted readings. It never silently replaces a mint that has
gone missing: readings already minted would no longer add up. Several
processes starting at once on a fresh database create one mint: the choice
and the record are made under the database-wide lock of core.db.locks.

Keys are reached through core.chain.signer only: the mint authority signs
what only it may sign, the fee payer (the authority itself unless one is
configured apart) pays rent and fees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.errors import BlockhashExpired, InsufficientFunds, MintMismatch, MintNotFound
from core.chain.instructions import (
    MINT_SIZE,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    CreateMintParams,
    associated_token_address,
    create_mint,
    token_program_id,
    token_program_name,
)
from core.chain.packing import pack_ata_creations
from core.chain.signer import Signer, as_signer, sign_transactions
from core.chain.status import MintInfo
from core.chain.transactions import build_transaction
from core.config import MintMode, Settings
from core.db.locks import engine_of, exclusive
from core.db.models import TokenMint

log = logging.getLogger(__name__)

LAMPORTS_PER_SOL = 1_000_000_000
# The embedded localnet tops the authority up to pay for mints and ATAs (~0.002 SOL each).
LOCALNET_LOW_BALANCE = 10 * LAMPORTS_PER_SOL
LOCALNET_AIRDROP = 100 * LAMPORTS_PER_SOL
FEE_ALLOWANCE = 100_000  # lamports: signature fees of a few transactions
SEND_ATTEMPTS = 3  # fresh blockhashes tried before giving up
# Token-2022 ATAs carry the ImmutableOwner extension: 165 base bytes + account type + TLV.
GRX_MINT_LOCK = "grx-mint"  # core.db.locks name for creating and recording the mint
TOKEN_ACCOUNT_SIZE = {TOKEN_PROGRAM_ID: 165, TOKEN_2022_PROGRAM_ID: 170}


@dataclass(frozen=True)
class GrxMint:
    address: Pubkey
    token_program: Pubkey
    decimals: int
    bootstrap_supply: int  # supply when first recorded: reconciliation's starting point
    created: bool


def check_mint(
    info: MintInfo,
    *,
    authority: Pubkey,
    decimals: int,
    token_program: Pubkey,
    signer_name: str = "file",
) -> None:
    """Raise MintMismatch naming the fix when this deployment cannot mint with `info`."""
    where = f"the GRX mint {info.address}"
    if info.token_program != token_program:
        actual = token_program_name(info.token_program)
        raise MintMismatch(
            f"{where} belongs to {actual}, not {token_program_name(token_program)}; "
            f"set TOKEN_PROGRAM={actual}"
        )
    if info.mint_authority != authority:
        raise MintMismatch(
            f"{where} has mint authority {info.mint_authority}, not {authority} (the "
            f"configured signer, {signer_name}); refusing to start. Configure the signer that "
            "holds that authority (AUTHORITY_SIGNER with AUTHORITY_KEYPAIR_PATH or "
            "VAULT_TRANSIT_KEY), move the authority to this signer with "
            "`python -m core.chain.authority rotate`, or unset ENERGY_TOKEN_MINT "
            "to let this deployment create its own GRX mint"
        )
    if info.decimals != decimals:
        raise MintMismatch(
            f"{where} has {info.decimals} decimals but TOKENIZATION_DECIMALS={decimals}; "
            f"set TOKENIZATION_DECIMALS={info.decimals}"
        )


def ensure_sol_balance(client: ChainClient, pubkey: Pubkey, needed: int, *, airdrop: bool) -> None:
    """Make sure `pubkey` can pay `needed` lamports, airdropping when allowed (localnet)."""
    balance = client.sol_balance(pubkey)
    if airdrop and balance < max(needed, LOCALNET_LOW_BALANCE):
        client.request_airdrop(pubkey, max(needed, LOCALNET_AIRDROP))
        balance = client.sol_balance(pubkey)
    if balance < needed:
        raise InsufficientFunds(
            f"the fee payer {pubkey} holds {balance} lamports but needs {needed}; fund it "
            f"(e.g. `solana transfer {pubkey} <SOL>` or, on devnet, `solana airdrop 1 {pubkey}`)"
        )


def _record(sessions: sessionmaker[Session], info: MintInfo, rpc_url: str) -> int:
    """Record the mint once; returns its bootstrap supply (the recorded one if known)."""
    with sessions() as session:
        row = session.get(TokenMint, str(info.address))
        if row is None:
            row = TokenMint(
                address=str(info.address),
                rpc_url=rpc_url,
                token_program=str(token_program_name(info.token_program)),
                decimals=info.decimals,
                bootstrap_supply=info.supply,
            )
            session.add(row)
            session.commit()
            log.info("recorded GRX mint %s (supply %d) for %s", info.address, info.supply, rpc_url)
        return row.bootstrap_supply


def _recorded_mint(sessions: sessionmaker[Session], rpc_url: str) -> str | None:
    with sessions() as session:
        return session.scalars(
            select(TokenMint.address)
            .where(TokenMint.rpc_url == rpc_url)
            .order_by(TokenMint.created_at.desc(), TokenMint.address)
            .limit(1)
        ).first()


def create_grx_mint(
    client: ChainClient,
    authority: Signer | Keypair,
    *,
    decimals: int,
    token_program: Pubkey,
    airdrop: bool,
    payer: Signer | Keypair | None = None,
) -> Pubkey:
    """A new mint (mint authority `authority`, no freeze authority), confirmed; not recorded.

    The payer (default: the authority) funds the account. The authority does
    not sign: InitializeMint only names it. The new account's own key signs
    once and is dropped.
    """
    authority_key = as_signer(authority).pubkey
    funder = as_signer(payer or authority)
    rent = client.minimum_balance_for_rent_exemption(MINT_SIZE)
    ensure_sol_balance(client, funder.pubkey, rent + FEE_ALLOWANCE, airdrop=airdrop)
    mint = Keypair()
    params = CreateMintParams(
        funder.pubkey, mint.pubkey(), authority_key, decimals, rent, token_program
    )
    for attempt in range(1, SEND_ATTEMPTS + 1):
        blockhash, last_valid = client.latest_blockhash()
        (tx,) = sign_transactions(
            [build_transaction(create_mint(params), funder.pubkey, blockhash)], [funder, mint]
        )
        try:
            client.wait_for_confirmation(client.send_raw(bytes(tx)), last_valid)
        except BlockhashExpired:
            if attempt == SEND_ATTEMPTS:
                raise
            continue  # it never landed: the same mint address is still free
        break
    log.info("created GRX mint %s (%d decimals) on %s", mint.pubkey(), decimals, client.url)
    return mint.pubkey()


def ensure_grx_mint(
    client: ChainClient,
    authority: Signer | Keypair,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    payer: Signer | Keypair | None = None,
) -> GrxMint:
    """The verified GRX mint for this deployment, created and recorded when needed.

    A mint that exists must name `authority` as its mint authority: a
    deployment whose signer cannot mint is refused at start, not at its first mint.
    """
    signer = as_signer(authority)
    app = settings.app
    rpc_url = app.effective_rpc_url.rstrip("/")
    decimals = settings.tokenization.decimals
    program = token_program_id(app.token_program)
    expected_authority = signer.pubkey
    if app.mint_mode is MintMode.ANCHOR:
        if not app.energy_token_mint:
            raise MintMismatch(
                "MINT_MODE=anchor mints with the energy_token program's own mint: "
                "set ENERGY_TOKEN_MINT to it"
            )
        from core.chain.anchor import verify_anchor_setup  # anchorpy is slow to import

        expected_authority = verify_anchor_setup(client, signer.pubkey, app)

    # Processes starting together on a fresh database must agree on one mint: the one
    # holding the lock creates and records it, the others then find it recorded.
    with exclusive(engine_of(sessions), GRX_MINT_LOCK):
        created = False
        if app.energy_token_mint:
            address = Pubkey.from_string(app.energy_token_mint)
            try:
                info = client.mint_info(address)
            except MintNotFound as exc:
                raise MintNotFound(
                    f"ENERGY_TOKEN_MINT={address} does not exist on {rpc_url}; check "
                    "SOLANA_RPC_URL, or unset ENERGY_TOKEN_MINT to create a GRX mint there"
                ) from exc
        else:
            recorded = _recorded_mint(sessions, rpc_url)
            if recorded is not None:
                try:
                    info = client.mint_info(Pubkey.from_string(recorded))
                except MintNotFound as exc:
                    raise MintNotFound(
                        f"the GRX mint {recorded} recorded in the database for {rpc_url} does "
                        "not exist there: the localnet ledger was probably reset while the "
                        "database was kept. Restore the ledger (DATA_DIR/localnet), or start "
                        "over by removing the database and the ledger together; do not mint to "
                        "a new mint while minted readings point at the old one"
                    ) from exc
            else:
                address = create_grx_mint(
                    client,
                    signer,
                    decimals=decimals,
                    token_program=program,
                    airdrop=app.uses_embedded_localnet,
                    payer=payer,
                )
                info = client.mint_info(address)
                created = True
        check_mint(
            info,
            authority=expected_authority,
            decimals=decimals,
            token_program=program,
            signer_name=signer.name,
        )
        if info.freeze_authority is not None:
            log.warning(
                "GRX mint %s has a freeze authority (%s)", info.address, info.freeze_authority
            )
        supply = _record(sessions, info, rpc_url)
    return GrxMint(info.address, info.token_program, info.decimals, supply, created)


def ensure_token_accounts(
    client: ChainClient,
    payer: Signer | Keypair,
    owners: Sequence[Pubkey],
    mint: Pubkey,
    token_program: Pubkey,
    *,
    airdrop: bool = False,
    timeout: float = 60.0,
) -> list[Pubkey]:
    """Each owner's ATA (in `owners` order), creating the missing ones in packed transactions.

    Creation is idempotent on chain, so a retry after an expired blockhash or
    a crash can never fail on accounts that were created in the meantime.
    """
    payer = as_signer(payer)
    addresses = [associated_token_address(owner, mint, token_program) for owner in owners]
    for attempt in range(1, SEND_ATTEMPTS + 1):
        unique = list(dict.fromkeys(zip(owners, addresses, strict=True)))
        exists = client.accounts_exist([address for _, address in unique])
        missing = [owner for (owner, _), found in zip(unique, exists, strict=True) if not found]
        if not missing:
            return addresses
        rent = client.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE[token_program])
        needed = len(missing) * rent + FEE_ALLOWANCE * (1 + len(missing) // 12)
        ensure_sol_balance(client, payer.pubkey, needed, airdrop=airdrop)
        blockhash, last_valid = client.latest_blockhash()
        unsigned = pack_ata_creations(payer.pubkey, missing, mint, token_program, blockhash)
        # Creation is idempotent, so these need no outbox: a lost one is simply redone.
        signed = sign_transactions(unsigned, [payer])
        signatures = [client.send_raw(bytes(tx)) for tx in signed]
        try:
            client.wait_for_confirmations(
                [(signature, last_valid) for signature in signatures], timeout=timeout
            )
        except BlockhashExpired:
            if attempt == SEND_ATTEMPTS:
                raise
            continue  # look again: some may have landed, the rest are re-sent
        log.info("created %d token accounts for mint %s", len(missing), mint)
        return addresses
    raise AssertionError("unreachable")  # the loop returns or raises
