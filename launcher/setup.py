"""First-start preparation that must happen once, before the services start.

The first admin and the GRX mint are created here, in one process, so that
several services starting together never race to create them. Both steps are
idempotent: on a later `make run` they find what exists and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.bootstrap import App
from core.chain.client import ChainClient
from core.chain.mint_setup import GrxMint, ensure_grx_mint
from core.chain.signer_setup import load_signers
from core.users import ensure_first_admin


@dataclass(frozen=True)
class FirstAdminNote:
    username: str
    generated_password: str | None
    password_file: str | None


def prepare_admin(app: App) -> FirstAdminNote | None:
    """The first admin, created when there is none; the note says how to log in."""
    with app.sessions() as session:
        first = ensure_first_admin(session, app.settings.app)
    if first is None:
        return None
    return FirstAdminNote(
        first.user.username,
        first.generated_password,
        str(first.password_file) if first.password_file else None,
    )


def prepare_mint(app: App) -> tuple[GrxMint, str]:
    """The signers and the GRX mint (created on the embedded localnet at first start)."""
    settings = app.settings.app
    signers = load_signers(settings)
    with ChainClient(settings.effective_rpc_url, commitment=settings.solana_commitment) as chain:
        grx = ensure_grx_mint(
            chain, signers.authority, app.sessions, app.settings, payer=signers.fee_payer
        )
    return grx, str(signers.authority.pubkey)
