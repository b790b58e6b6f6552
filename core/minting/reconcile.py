"""Reconciliation: the mint's on-chain supply must equal what the database says was minted.

Reads happen in an order that makes a true mismatch the only way to fail:
the database first (minted so far: all of it is already on chain), then the chain's
supply, then the database again (minted + still in flight: nothing beyond that can
be on chain). "Minted so far" is the running total kept with each finalized batch
(core.minting.totals), so a check costs the same at a billion readings; a slower job
audits that total against the full sum. The supply must lie between the two, plus
the supply recorded at bootstrap. When it does not, a `reconcile_mismatch` event is
written and auto-mint is paused until an admin has looked (docs/OPERATIONS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import TokenizationConfig
from core.db.models import BatchStatus, MintBatch, OperationKind, TokenMint
from core.events import EventType, publish
from core.minting.totals import running_minted
from core.settings_store import effective_config, update_settings

log = logging.getLogger(__name__)
RECONCILER = "reconciler"


@dataclass(frozen=True)
class Reconciliation:
    onchain_supply: int
    expected_supply: int  # bootstrap + minted, before the chain was read
    in_flight_upper: int  # bootstrap + minted + in flight, after the chain was read

    @property
    def ok(self) -> bool:
        return self.expected_supply <= self.onchain_supply <= self.in_flight_upper


def minted_base_units(session: Session) -> int:
    """What was minted, from the running total (constant time; core.minting.totals
    keeps it and `audit` checks it against the full sum)."""
    return running_minted(session)


def in_flight_base_units(session: Session) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(MintBatch.total_base_units), 0)).where(
                MintBatch.status == BatchStatus.SIGNED.value,
                MintBatch.kind == OperationKind.MINT.value,  # certificates have their own mint
            )
        )
    )


def check_supply(
    sessions: sessionmaker[Session], mint_address: str, read_supply: Callable[[], int]
) -> Reconciliation:
    with sessions() as session:
        bootstrap = session.scalar(
            select(TokenMint.bootstrap_supply).where(TokenMint.address == mint_address)
        )
        before = minted_base_units(session)
    supply = read_supply()
    with sessions() as session:
        after = minted_base_units(session) + in_flight_base_units(session)
    base = int(bootstrap or 0)
    return Reconciliation(supply, base + before, base + after)


def reconcile(
    sessions: sessionmaker[Session],
    base_config: TokenizationConfig,
    mint_address: str,
    read_supply: Callable[[], int],
) -> Reconciliation:
    """Check the supply; on a mismatch write the alert event and pause auto-mint."""
    result = check_supply(sessions, mint_address, read_supply)
    if result.ok:
        return result
    log.error(
        "RECONCILE MISMATCH on %s: on-chain supply %d, expected %d (up to %d with batches "
        "in flight); auto-mint paused",
        mint_address,
        result.onchain_supply,
        result.expected_supply,
        result.in_flight_upper,
    )
    with sessions() as session:
        publish(
            session,
            EventType.RECONCILE_MISMATCH,
            {
                "onchain_supply": result.onchain_supply,
                "expected_supply": result.expected_supply,
                "expected_with_in_flight": result.in_flight_upper,
                "mint": mint_address,
            },
        )
        session.commit()
        if effective_config(session, base_config).auto_mint_enabled:
            update_settings(session, base_config, {"auto_mint_enabled": False}, by=RECONCILER)
    return result
