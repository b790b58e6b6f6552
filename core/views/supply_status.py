"""Supply status: the mint's on-chain supply read against what the database expects.

It says "unknown" (never "match") when the chain cannot be read, and shows a
mismatch rather than hiding it. The reconciler that acts on a mismatch is
core.minting.reconcile; this only describes what a page can see now.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.chain.reader import ChainRead
from core.views.overview import ExpectedSupply


class ReconcileState(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"  # the chain could not be read
    NO_MINT = "no_mint"  # no GRX mint recorded yet


@dataclass(frozen=True, slots=True)
class Reconcile:
    state: ReconcileState
    expected: int | None
    onchain: int | None
    detail: str

    @property
    def difference(self) -> int | None:
        if self.expected is None or self.onchain is None:
            return None
        return self.onchain - self.expected


def reconcile(expected: ExpectedSupply | None, onchain: ChainRead[int]) -> Reconcile:
    """Compare the mint's supply with the database; a mismatch is shown, never hidden."""
    if expected is None:
        return Reconcile(ReconcileState.NO_MINT, None, None, "no GRX mint recorded yet")
    if not onchain.ok or onchain.value is None:
        return Reconcile(
            ReconcileState.UNKNOWN, expected.expected, None, onchain.error or "not read"
        )
    if onchain.value == expected.expected:
        return Reconcile(ReconcileState.MATCH, expected.expected, onchain.value, "supply matches")
    return Reconcile(
        ReconcileState.MISMATCH,
        expected.expected,
        onchain.value,
        "on-chain supply differs from bootstrap supply + minted readings",
    )
