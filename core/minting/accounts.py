"""The wallets' associated token accounts, created before the mints that credit them.

A wallet's ATA is created once (idempotently, so a race or a retry is harmless)
and then remembered, so a steady stream of readings costs no extra RPC calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.pubkey import Pubkey

from core.chain.client import ChainClient
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import associated_token_address
from core.chain.mint_setup import ensure_token_accounts
from core.chain.signer import Signer


class TokenAccounts:
    def __init__(
        self,
        chain: ChainClient,
        payer: Signer,
        factory: MintInstructionFactory,
        *,
        airdrop: bool = False,
    ) -> None:
        self.chain = chain
        self.payer = payer
        self.factory = factory
        self.airdrop = airdrop  # top the payer up from the faucet (embedded localnet only)
        self._known: dict[str, Pubkey] = {}

    def address(self, wallet: str) -> Pubkey:
        return associated_token_address(
            Pubkey.from_string(wallet), self.factory.mint, self.factory.token_program
        )

    def ensure(self, wallets: Sequence[str]) -> dict[str, Pubkey]:
        """wallet -> its token account, creating the missing ones (confirmed) first."""
        unknown = [w for w in dict.fromkeys(wallets) if w not in self._known]
        if unknown:
            created = ensure_token_accounts(
                self.chain,
                self.payer,
                [Pubkey.from_string(wallet) for wallet in unknown],
                self.factory.mint,
                self.factory.token_program,
                airdrop=self.airdrop,
            )
            self._known.update(zip(unknown, created, strict=True))
        return {wallet: self._known[wallet] for wallet in wallets}
