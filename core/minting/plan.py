"""Planning a claim: exact base units per reading, one mint per wallet, packed batches.

Pure functions over plain values, so the arithmetic and the grouping are tested
without a database or a chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from core.units import micro_to_base_units
from core.wallets import is_valid_wallet


@dataclass(frozen=True)
class ClaimedReading:
    id: int
    user_id: int
    wallet_address: str | None
    kwh_micro: int


@dataclass
class WalletMint:
    """Everything one wallet receives in one transaction: a single MintTo."""

    wallet_address: str
    base_units: int = 0
    reading_ids: list[int] = field(default_factory=list)


@dataclass
class Plan:
    base_units: dict[int, int]  # reading id -> its own floor(kwh × ratio × 10^d)
    batches: list[list[WalletMint]]  # each inner list becomes one transaction
    invalid_wallet: list[int]  # readings that fail alone: no valid wallet to mint to
    nothing_to_mint: list[int]  # readings worth 0 base units at this ratio


def plan_claim(
    readings: Sequence[ClaimedReading],
    *,
    ratio: Decimal,
    decimals: int,
    wallets_per_transaction: int,
) -> Plan:
    """Group claimed readings by wallet and pack the wallets into transactions.

    Each reading's amount is floored on its own (CONTRACT "Money"), so a wallet
    receives exactly the sum of its readings' recorded base units and the
    reconciliation adds up reading by reading.
    """
    if wallets_per_transaction < 1:
        raise ValueError("wallets_per_transaction must be at least 1")
    base_units: dict[int, int] = {}
    invalid, nothing = [], []
    by_wallet: dict[str, WalletMint] = {}
    for reading in readings:
        if not is_valid_wallet(reading.wallet_address):
            invalid.append(reading.id)
            continue
        units = micro_to_base_units(reading.kwh_micro, ratio, decimals)
        base_units[reading.id] = units
        if units == 0:
            nothing.append(reading.id)
            continue
        wallet = str(reading.wallet_address)
        group = by_wallet.setdefault(wallet, WalletMint(wallet))
        group.base_units += units
        group.reading_ids.append(reading.id)
    groups = list(by_wallet.values())
    batches = [
        groups[start : start + wallets_per_transaction]
        for start in range(0, len(groups), wallets_per_transaction)
    ]
    return Plan(base_units, batches, invalid, nothing)


def backoff_seconds(attempts: int, base_secs: int) -> int:
    """Delay before the next try after `attempts` failed landings: base × 2^(attempts-1)."""
    return base_secs * 2 ** max(0, attempts - 1)


def wallets_of(batches: Iterable[list[WalletMint]]) -> list[str]:
    return [mint.wallet_address for batch in batches for mint in batch]
