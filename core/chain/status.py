"""What the cluster says about a signature or an account, as our own small values.

`Confirmation.state` separates the four cases the pipeline acts on: confirmed,
failed on chain, pending (ask again) and expired (can never land: re-sign).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from solders.pubkey import Pubkey
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionStatus,
)

from core.chain.errors import AlreadyProcessed, BlockhashExpired, ChainError, TransactionFailed

COMMITMENTS = ("processed", "confirmed", "finalized")


def describe_transaction_error(err: Any) -> str:
    """A short stable text for a solders TransactionError ("BlockhashNotFound", ...)."""
    if isinstance(err, TransactionErrorFieldless):
        return str(err).rsplit(".", 1)[-1]
    name = type(err).__name__.removeprefix("TransactionError")
    to_json = getattr(err, "to_json", None)
    return f"{name}: {to_json()}" if to_json else str(err)


def transaction_error(err: Any, message: str, logs: tuple[str, ...] = ()) -> ChainError:
    """Our exception for a transaction error reported by preflight or by a landed status."""
    if err == TransactionErrorFieldless.BlockhashNotFound:
        return BlockhashExpired(f"{message} (the blockhash is no longer valid: re-sign)")
    if err == TransactionErrorFieldless.AlreadyProcessed:
        return AlreadyProcessed(f"{message} (this exact transaction was already processed)")
    return TransactionFailed(message, error=describe_transaction_error(err), logs=logs)


# solders' TransactionConfirmationStatus is not hashable: compare, do not look up.
_LEVELS = (
    (TransactionConfirmationStatus.Processed, "processed"),
    (TransactionConfirmationStatus.Confirmed, "confirmed"),
    (TransactionConfirmationStatus.Finalized, "finalized"),
)


def _level_name(level: TransactionConfirmationStatus) -> str:
    return next(name for value, name in _LEVELS if value == level)


@dataclass(frozen=True)
class SignatureStatus:
    """A transaction the cluster has seen: where it landed and whether it failed."""

    slot: int
    commitment: str  # processed | confirmed | finalized
    error: str | None  # None: succeeded

    @classmethod
    def from_solders(cls, status: TransactionStatus) -> SignatureStatus:
        level = status.confirmation_status
        # Nodes that omit confirmationStatus report confirmations=None only once rooted.
        commitment = _level_name(level) if level is not None else "finalized"
        if level is None and status.confirmations is not None:
            commitment = "confirmed" if status.confirmations > 0 else "processed"
        error = None if status.err is None else describe_transaction_error(status.err)
        return cls(slot=status.slot, commitment=commitment, error=error)

    @property
    def succeeded(self) -> bool:
        return self.error is None

    def reached(self, commitment: str) -> bool:
        return COMMITMENTS.index(self.commitment) >= COMMITMENTS.index(commitment)


class ConfirmationState(StrEnum):
    CONFIRMED = "confirmed"  # succeeded at the wanted commitment
    FAILED = "failed"  # landed with an error: it consumed its fee and minted nothing
    PENDING = "pending"  # not yet at the commitment, but may still get there
    EXPIRED = "expired"  # never seen and its blockhash is past: it can never land


@dataclass(frozen=True)
class Confirmation:
    state: ConfirmationState
    status: SignatureStatus | None = None

    @classmethod
    def judge(
        cls,
        status: SignatureStatus | None,
        *,
        commitment: str,
        block_height_before: int,
        last_valid_block_height: int,
    ) -> Confirmation:
        """Classify a status read *after* the block height `block_height_before`.

        Reading the height first matters: once the height is past the
        transaction's last valid block height it can no longer land, so "not
        found" afterwards really means expired, never "landed in between".
        """
        if status is None:
            if block_height_before > last_valid_block_height:
                return cls(ConfirmationState.EXPIRED)
            return cls(ConfirmationState.PENDING)
        if not status.reached(commitment):
            # Even a failure is only final at the wanted commitment (a fork may drop it).
            return cls(ConfirmationState.PENDING, status)
        if not status.succeeded:
            return cls(ConfirmationState.FAILED, status)
        return cls(ConfirmationState.CONFIRMED, status)


@dataclass(frozen=True)
class AccountData:
    owner: Pubkey
    lamports: int
    data: bytes


@dataclass(frozen=True)
class MintInfo:
    address: Pubkey
    mint_authority: Pubkey | None
    decimals: int
    supply: int
    freeze_authority: Pubkey | None
    token_program: Pubkey  # the account's owner


@dataclass(frozen=True)
class BalanceChange:
    account: Pubkey
    before: int  # lamports
    after: int


@dataclass(frozen=True)
class TransactionCost:
    """What a landed transaction cost, from its status meta (getTransaction)."""

    signature: str
    slot: int
    fee: int  # lamports the fee payer paid: signatures and priority fee
    compute_units: int | None
    failed: bool
    fee_payer: Pubkey
    changes: tuple[BalanceChange, ...]  # every account whose lamports moved, payer first

    @property
    def rent(self) -> tuple[BalanceChange, ...]:
        """Accounts other than the payer that gained lamports: rent deposited into them."""
        return tuple(
            change
            for change in self.changes
            if change.account != self.fee_payer and change.after > change.before
        )
