"""Which signers this deployment uses, built once from the settings by each composition root.

The mint authority signs only what needs the mint authority (AUTHORITY_SIGNER:
the keypair file, or a transit key that never leaves OpenBao / Vault). The fee
payer pays fees and rent and signs every transaction; without
FEE_PAYER_KEYPAIR_PATH the authority is its own fee payer, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from solders.pubkey import Pubkey

from core.chain.signer import Signer, file_signer
from core.config import AppSettings, AuthoritySigner

_SPEC = re.compile(r"^(?P<kind>file|vault-transit):(?P<target>.+?)(?:@v?(?P<version>\d+))?$")


@dataclass(frozen=True)
class ChainSigners:
    authority: Signer
    fee_payer: Signer

    @property
    def payer_is_separate(self) -> bool:
        return self.fee_payer.pubkey != self.authority.pubkey

    @property
    def fee_payer_pubkey(self) -> Pubkey:
        """The account whose balance pays for everything (watched for running low)."""
        return self.fee_payer.pubkey


def transit_signer(app: AppSettings, key: str, version: int | None) -> Signer:
    from core.chain.transit import TransitSigner  # hvac is only needed with transit

    return TransitSigner(
        app.vault_addr,
        key,
        mount=app.vault_transit_mount,
        key_version=version,
        token=app.vault_token,
        role_id=app.vault_role_id,
        secret_id=app.vault_secret_id,
        ca_cert=app.vault_cacert,
    )


def configured_signer_name(app: AppSettings) -> str:
    """The name the configured authority signer will have (known before it is reachable)."""
    if app.authority_signer is AuthoritySigner.VAULT_TRANSIT:
        return f"vault-transit:{app.vault_transit_mount}/{app.vault_transit_key}"
    return "file"


def authority_signer(app: AppSettings) -> Signer:
    """The mint authority AUTHORITY_SIGNER names."""
    if app.authority_signer is AuthoritySigner.VAULT_TRANSIT:
        return transit_signer(app, app.vault_transit_key, app.vault_transit_key_version)
    return file_signer(app.effective_authority_keypair_path)


def load_signers(app: AppSettings) -> ChainSigners:
    """The authority and fee-payer signers the settings name."""
    authority = authority_signer(app)
    if app.fee_payer_keypair_path is None:
        return ChainSigners(authority=authority, fee_payer=authority)
    payer = file_signer(app.fee_payer_keypair_path, name="file:fee-payer", role="fee payer")
    return ChainSigners(authority=authority, fee_payer=payer)


def signer_from_spec(spec: str, app: AppSettings) -> Signer:
    """`file:<keypair path>` or `vault-transit:<key>[@<version>]` (the VAULT_* settings reach it).

    ValueError names the accepted forms.
    """
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(
            f"{spec!r} names no signer; use file:<keypair path> or vault-transit:<key>[@<version>]"
        )
    version = int(match["version"]) if match["version"] else None
    if match["kind"] == "file":
        if version is not None:
            raise ValueError("a keypair file has no versions: use file:<keypair path>")
        return file_signer(Path(match["target"]))
    if not app.vault_addr:
        raise ValueError("vault-transit signers need VAULT_ADDR and VAULT_TOKEN (or AppRole)")
    return transit_signer(app, match["target"], version)
