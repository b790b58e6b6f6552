"""`python -m core.chain.authority`: show or move the mint authority (GRX and certificates).

    python -m core.chain.authority show
    python -m core.chain.authority rotate --to vault-transit:<key>[@<version>]
    python -m core.chain.authority rotate --to file:<keypair path>

The current authority is the configured signer (AUTHORITY_SIGNER and friends).
A rotation goes through the same outbox as mints (core.minting.authority);
afterwards configure the new signer and restart the scheduler. Exit codes: 0
done, 1 refused or failed (the message says why), 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys

from core.bootstrap import bootstrap
from core.chain.certificate_mint import ensure_certificate_mint
from core.chain.client import ChainClient
from core.chain.mint_setup import ensure_grx_mint
from core.chain.signer_setup import load_signers, signer_from_spec
from core.config import ConfigError
from core.db.migrate import DatabaseNotMigrated
from core.errors import DomainError


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.chain.authority")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="the mint, its on-chain authority and the configured signer")
    rotate = commands.add_parser("rotate", help="move the mint authority to another signer")
    rotate.add_argument(
        "--to", required=True, help="file:<keypair path> or vault-transit:<key>[@<version>]"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        app = bootstrap()
    except (ConfigError, DatabaseNotMigrated) as exc:
        print(f"authority: {exc}", file=sys.stderr)
        return 2
    settings = app.settings.app
    try:
        signers = load_signers(settings)
        with ChainClient(
            settings.effective_rpc_url, commitment=settings.solana_commitment
        ) as chain:
            grx = ensure_grx_mint(
                chain, signers.authority, app.sessions, app.settings, payer=signers.fee_payer
            )
            if args.command == "show":
                print(f"mint            {grx.address}")
                print(f"mint authority  {signers.authority.pubkey} ({signers.authority.name})")
                print(f"fee payer       {signers.fee_payer.pubkey} ({signers.fee_payer.name})")
                return 0
            try:
                new = signer_from_spec(args.to, settings)
            except ValueError as exc:
                print(f"authority: {exc}", file=sys.stderr)
                return 2
            from core.minting.authority import rotate_mint_authority  # the outbox lives there

            certificates = ensure_certificate_mint(
                chain,
                signers.authority,
                app.sessions,
                settings.effective_rpc_url,
                payer=signers.fee_payer,
                airdrop=settings.uses_embedded_localnet,
            )
            change = rotate_mint_authority(app, chain, signers, grx, new, certificates)
    except DomainError as exc:
        print(f"authority: {exc}", file=sys.stderr)
        return 1
    finally:
        app.close()
    print(
        f"mint authority of {grx.address} and certificate mint {certificates.address} moved "
        f"from {change.old_authority} to "
        f"{change.new_authority} ({new.name}) in {change.signature} (batch {change.batch_id})"
    )
    print(
        "now configure that signer (AUTHORITY_SIGNER, VAULT_TRANSIT_KEY or "
        "AUTHORITY_KEYPAIR_PATH) and restart the scheduler"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
