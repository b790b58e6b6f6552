"""What the ledger keeps about a processed transaction, as the node and its readers see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """What the ledger keeps about one processed transaction (getTransaction's source)."""

    signature: bytes
    slot: int
    block_time: int
    failed: bool
    meta_json: str
    raw: bytes
    # Token balances before and after, packed by tokens.balance_snapshot.
    pre_tokens: bytes = b""
    post_tokens: bytes = b""
    # Every account the transaction loaded (static keys, then lookup-table loads).
    addresses: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    slot: int
    failed: bool
