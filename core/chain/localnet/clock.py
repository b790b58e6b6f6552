"""Slots, block heights and the window of valid blockhashes, moving like a cluster's.

LiteSVM has no notion of time and its genesis blockhash is the same in every
process, so the node keeps its own clock: one slot (and one block) every
`slot_ms`, each slot with a blockhash derived from the ledger's seed. Deriving
rather than storing means the window is rebuilt exactly after a restart.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from solders.hash import Hash

# A blockhash is usable for this many blocks after its own (agave MAX_PROCESSING_AGE).
MAX_PROCESSING_AGE = 150
# Blockhashes and statuses the node remembers (agave MAX_RECENT_BLOCKHASHES / status cache).
RECENT_SLOTS = 300
# A slot is rooted (finalized) once this many slots are built on it.
FINALIZATION_DEPTH = 32
SLOTS_PER_EPOCH = 432_000

COMMITMENTS = ("processed", "confirmed", "finalized")
# Older names clients still send; the cluster maps them the same way.
_COMMITMENT_ALIASES = {"recent": "processed", "single": "confirmed", "singleGossip": "confirmed"}
_COMMITMENT_ALIASES |= {"root": "finalized", "max": "finalized"}


def blockhash_for(seed: bytes, slot: int) -> Hash:
    return Hash(hashlib.sha256(seed + slot.to_bytes(8, "little")).digest())


def normalize_commitment(value: str | None) -> str:
    """The commitment a request asks for; RPC nodes default to finalized."""
    if value is None:
        return "finalized"
    value = _COMMITMENT_ALIASES.get(value, value)
    if value not in COMMITMENTS:
        raise ValueError(f"unknown variant `{value}`, expected one of {', '.join(COMMITMENTS)}")
    return value


class SlotClock:
    """The current slot, derived from a monotonic clock, and the recent blockhashes.

    Block height equals slot here: the node never skips a slot.
    """

    def __init__(
        self,
        seed: bytes,
        start_slot: int,
        slot_ms: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seed = seed
        self._slot_ms = slot_ms
        self._monotonic = monotonic
        self._origin_slot = start_slot
        self._origin_time = monotonic()
        self.slot = start_slot
        self._recent: dict[Hash, int] = {}
        for slot in range(max(0, start_slot - RECENT_SLOTS + 1), start_slot + 1):
            self._recent[blockhash_for(seed, slot)] = slot

    @property
    def slot_ms(self) -> int:
        return self._slot_ms

    def advance(self) -> bool:
        """Catch up with wall-clock time; True when a new slot has begun."""
        elapsed_ms = (self._monotonic() - self._origin_time) * 1000
        target = self._origin_slot + int(elapsed_ms // self._slot_ms)
        if target <= self.slot:
            return False
        for slot in range(max(self.slot + 1, target - RECENT_SLOTS + 1), target + 1):
            self._recent[blockhash_for(self._seed, slot)] = slot
        oldest = target - RECENT_SLOTS
        # Dicts keep insertion order, and slots are inserted in order: drop from the front.
        while self._recent:
            first = next(iter(self._recent))
            if self._recent[first] > oldest:
                break
            del self._recent[first]
        self.slot = target
        return True

    def seconds_to_next_slot(self) -> float:
        next_at = (self.slot + 1 - self._origin_slot) * self._slot_ms / 1000
        return max(0.0, self._origin_time + next_at - self._monotonic())

    def view_slot(self, commitment: str) -> int:
        """The slot a reader at this commitment sees (confirmed lags one, finalized 32)."""
        if commitment == "processed":
            return self.slot
        if commitment == "confirmed":
            return max(0, self.slot - 1)
        return max(0, self.slot - FINALIZATION_DEPTH)

    def blockhash(self, slot: int) -> Hash:
        return blockhash_for(self._seed, slot)

    def slot_of(self, blockhash: Hash) -> int | None:
        return self._recent.get(blockhash)

    def is_valid(self, blockhash: Hash, at_slot: int | None = None) -> bool:
        """True when a transaction with this blockhash may still land at `at_slot` (now)."""
        at_slot = self.slot if at_slot is None else at_slot
        slot = self._recent.get(blockhash)
        return slot is not None and slot <= at_slot <= slot + MAX_PROCESSING_AGE

    def confirmation(self, slot: int) -> tuple[int | None, str]:
        """(confirmations, status) of something processed in `slot`, as getSignatureStatuses."""
        depth = self.slot - slot
        if depth >= FINALIZATION_DEPTH:
            return None, "finalized"
        if depth >= 1:
            return depth, "confirmed"
        return 0, "processed"

    def in_status_cache(self, slot: int) -> bool:
        return slot > self.slot - RECENT_SLOTS
