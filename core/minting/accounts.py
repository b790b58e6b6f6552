"""The wallets' associated token accounts, created (through the outbox) before their mints.

A wallet's ATA is looked up once and then remembered, so a steady stream of
readings costs no extra RPC calls. Missing ones are created in `token_accounts`
operations of the outbox (idempotent instructions, at most 12 per transaction),
so their rent and fees are recorded like any chain write; the mints wait until
they settle. With TOKENIZATION_CREATE_TOKEN_ACCOUNTS=false nothing is created:
the caller holds the readings of wallets without an account, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from solders.pubkey import Pubkey
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.compute_budget import ComputeBudget
from core.chain.errors import ChainError, NotYetConfirmed
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import associated_token_address
from core.chain.mint_setup import (
    FEE_ALLOWANCE,
    SEND_ATTEMPTS,
    TOKEN_ACCOUNT_SIZE,
    ensure_sol_balance,
)
from core.chain.packing import MAX_ATA_CREATIONS_PER_TX, build_ata_transaction
from core.db.models import OperationKind
from core.minting import states
from core.minting.claim import ClaimedBatch
from core.minting.outbox import CycleReport, Outbox

log = logging.getLogger(__name__)


class MissingTokenAccounts(ChainError):
    code = "missing_token_accounts"


def missing_account_reason(mint: Pubkey) -> str:
    return (
        "the wallet has no GRX token account and TOKENIZATION_CREATE_TOKEN_ACCOUNTS=false: "
        f"create it (spl-token create-account {mint} --owner <wallet>) or let the scheduler "
        "create token accounts; the reading waits and is minted once the account exists"
    )


class TokenAccounts:
    def __init__(
        self,
        chain: ChainClient,
        factory: MintInstructionFactory,
        outbox: Outbox,
        payer: Pubkey,
        *,
        compute_budget: Callable[[], ComputeBudget],
        airdrop: bool = False,
    ) -> None:
        self.chain = chain
        self.factory = factory
        self.outbox = outbox
        self.payer = payer
        self.compute_budget = compute_budget
        self.airdrop = airdrop  # top the payer up from the faucet (embedded localnet only)
        self._known: dict[str, Pubkey] = {}

    def address(self, wallet: str) -> Pubkey:
        return associated_token_address(
            Pubkey.from_string(wallet), self.factory.mint, self.factory.token_program
        )

    def forget(self, wallets: Sequence[str]) -> None:
        """Look these up again next time (a mint to them failed: the account may be gone)."""
        for wallet in wallets:
            self._known.pop(wallet, None)

    def resolve(
        self, wallets: Sequence[str], *, create: bool, report: CycleReport | None = None
    ) -> tuple[dict[str, Pubkey], list[str]]:
        """(wallet -> token account for those that have one, wallets that have none).

        With `create`, missing accounts are created first and the second list is empty.
        """
        unique = list(dict.fromkeys(wallets))
        missing = self._look_up([w for w in unique if w not in self._known])
        if missing and create:
            missing = self._create(missing, report or CycleReport())
            if missing:
                raise MissingTokenAccounts(
                    f"{len(missing)} token account(s) still missing after creation"
                )
        return {w: self._known[w] for w in unique if w in self._known}, missing

    def ensure(self, wallets: Sequence[str]) -> dict[str, Pubkey]:
        """wallet -> its token account, creating the missing ones first."""
        found, _ = self.resolve(wallets, create=True)
        return {wallet: found[wallet] for wallet in wallets}

    def _look_up(self, wallets: list[str]) -> list[str]:
        """Remember the accounts that exist; return the wallets whose account does not."""
        if not wallets:
            return []
        addresses = [self.address(wallet) for wallet in wallets]
        exists = self.chain.accounts_exist(addresses)
        missing = []
        for wallet, address, found in zip(wallets, addresses, exists, strict=True):
            if found:
                self._known[wallet] = address
            else:
                missing.append(wallet)
        return missing

    def _create(self, wallets: list[str], report: CycleReport) -> list[str]:
        """Create the accounts through the outbox, wait until they settle; the still missing."""
        program = self.factory.token_program
        rent = self.chain.minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE[program])
        needed = len(wallets) * rent + FEE_ALLOWANCE * (1 + len(wallets) // 12)
        ensure_sol_balance(self.chain, self.payer, needed, airdrop=self.airdrop)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            chunks = [
                wallets[start : start + MAX_ATA_CREATIONS_PER_TX]
                for start in range(0, len(wallets), MAX_ATA_CREATIONS_PER_TX)
            ]
            with self.outbox.sessions() as session:
                ids = [
                    self.outbox.plan(
                        session,
                        OperationKind.TOKEN_ACCOUNTS,
                        {"owners": chunk, "accounts": [str(self.address(w)) for w in chunk]},
                    )
                    for chunk in chunks
                ]
                session.commit()
            blockhash, last_valid = self.chain.latest_blockhash()
            budget = self.compute_budget()
            prepared = self.outbox.sign_all(
                [
                    (
                        operation_id,
                        build_ata_transaction(
                            self.payer,
                            [Pubkey.from_string(w) for w in chunk],
                            self.factory.mint,
                            program,
                            blockhash,
                            budget,
                        ),
                        last_valid,
                        OperationKind.TOKEN_ACCOUNTS.value,
                    )
                    for operation_id, chunk in zip(ids, chunks, strict=True)
                ]
            )
            in_flight = self.outbox.persist(prepared, blockhash)
            self.outbox.broadcast(in_flight)
            report.operations_sent += len(in_flight)
            undecided = self.outbox.settle(in_flight, report)
            if undecided:
                raise NotYetConfirmed(
                    f"{len(undecided)} token-account transaction(s) not settled yet; "
                    "recovery settles them"
                )
            wallets = self._look_up(wallets)
            if not wallets or attempt == SEND_ATTEMPTS:
                break
        return wallets


def hold_without_accounts(
    sessions: sessionmaker[Session],
    claimed: Sequence[ClaimedBatch],
    missing: Sequence[str],
    *,
    mint: Pubkey,
    until: datetime,
    now: datetime,
) -> list[ClaimedBatch]:
    """Take wallets without a token account out of their batches, for later, with why."""
    absent = set(missing)
    reason = missing_account_reason(mint)
    kept = []
    for batch in claimed:
        holding = [wallet for wallet, _ in batch.mints if wallet in absent]
        if not holding:
            kept.append(batch)
            continue
        with sessions() as session:
            held = set(
                states.hold_wallets(session, batch.id, holding, reason=reason, until=until, now=now)
            )
        log.warning("holding %d reading(s): %s", len(held), reason)
        mints = [(wallet, units) for wallet, units in batch.mints if wallet not in absent]
        if mints:
            kept.append(
                replace(
                    batch,
                    mints=mints,
                    reading_ids=[r for r in batch.reading_ids if r not in held],
                    total_base_units=sum(units for _, units in mints),
                )
            )
    return kept
