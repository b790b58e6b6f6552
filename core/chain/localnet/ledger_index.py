"""Reads over the ledger's indexes: accounts by owner, mint or delegate, history by address.

Every read first waits for the writer (`settle`), so it sees every write the
node has already applied in memory; the wait is one commit at most, and these
are the rare calls of explorers and wallets, never the minting hot path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

from core.chain.localnet.records import TransactionRecord

_TOKEN_ACCOUNTS = {
    "token_owner": "SELECT pubkey FROM accounts WHERE token_owner = ? ORDER BY pubkey",
    "token_delegate": "SELECT pubkey FROM accounts WHERE token_delegate = ? ORDER BY pubkey",
    "token_mint": "SELECT pubkey FROM accounts WHERE token_mint = ? ORDER BY pubkey",
}
_TOKEN_ACCOUNTS_OF_MINT = {
    "token_owner": "SELECT pubkey FROM accounts WHERE token_owner = ? AND token_mint = ?"
    " ORDER BY pubkey",
    "token_delegate": "SELECT pubkey FROM accounts WHERE token_delegate = ? AND token_mint = ?"
    " ORDER BY pubkey",
    "token_mint": "SELECT pubkey FROM accounts WHERE token_mint = ? AND token_mint = ?"
    " ORDER BY pubkey",
}


@dataclass(frozen=True, slots=True)
class SlotStart:
    """A run of the node: its first slot, the wall-clock time it began, its slot length."""

    slot: int
    unix_ms: int
    slot_ms: int


@dataclass(frozen=True, slots=True)
class AddressSignature:
    position: int  # the transaction's place in the ledger, newest highest
    record: TransactionRecord


def _record(row: tuple) -> TransactionRecord:  # type: ignore[type-arg]
    signature, slot, block_time, failed, meta, raw, pre, post = row
    return TransactionRecord(bytes(signature), slot, block_time, bool(failed), meta, raw, pre, post)


class LedgerIndex:
    def __init__(self, db: sqlite3.Connection, settle: Callable[[], None]) -> None:
        self._db = db
        self._settle = settle

    # Accounts

    def token_accounts(self, column: str, key: Pubkey, mint: Pubkey | None = None) -> list[Pubkey]:
        """Token accounts whose `column` (token_owner, token_delegate, token_mint) is `key`."""
        self._settle()
        if mint is None:
            rows = self._db.execute(_TOKEN_ACCOUNTS[column], (bytes(key),))
        else:
            rows = self._db.execute(_TOKEN_ACCOUNTS_OF_MINT[column], (bytes(key), bytes(mint)))
        return [Pubkey.from_bytes(pubkey) for (pubkey,) in rows]

    def owned_by(self, program: Pubkey) -> list[tuple[Pubkey, Account]]:
        self._settle()
        rows = self._db.execute(
            "SELECT pubkey, account FROM accounts WHERE owner = ? ORDER BY pubkey",
            (bytes(program),),
        )
        return [(Pubkey.from_bytes(key), Account.from_bytes(blob)) for key, blob in rows]

    def largest(self, limit: int, exclude: frozenset[str] = frozenset()) -> list[tuple[str, int]]:
        self._settle()
        rows = self._db.execute(
            "SELECT pubkey, lamports FROM accounts ORDER BY lamports DESC, pubkey LIMIT ?",
            (limit + len(exclude),),
        )
        found = [(str(Pubkey.from_bytes(key)), lamports) for key, lamports in rows]
        keep = [(key, lamports) for key, lamports in found if key not in exclude]
        return keep[:limit]

    def total_lamports(self) -> int:
        self._settle()
        return int(
            self._db.execute("SELECT coalesce(sum(lamports), 0) FROM accounts").fetchone()[0]
        )

    # History

    def position(self, signature: bytes) -> tuple[int, int] | None:
        """(ledger position, slot) of a processed transaction."""
        self._settle()
        row = self._db.execute(
            "SELECT id, slot FROM transactions WHERE signature = ?", (signature,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def signatures_for(
        self, address: Pubkey, *, before: int | None, until: int | None, max_slot: int, limit: int
    ) -> list[AddressSignature]:
        """Newest first: transactions that loaded `address`, strictly between until and before."""
        self._settle()
        rows = self._db.execute(
            "SELECT t.id, t.signature, t.slot, t.block_time, t.failed, t.meta, t.raw,"
            " t.pre_tokens, t.post_tokens"
            " FROM address_signatures a JOIN transactions t ON t.id = a.tx"
            " WHERE a.address = ? AND a.tx < ? AND a.tx > ? AND t.slot <= ?"
            " ORDER BY a.tx DESC LIMIT ?",
            (
                bytes(address),
                (1 << 62) if before is None else before,
                -1 if until is None else until,
                max_slot,
                limit,
            ),
        )
        return [AddressSignature(row[0], _record(row[1:])) for row in rows]

    def in_slot(self, slot: int) -> list[TransactionRecord]:
        """The transactions of one block, in the order they executed."""
        self._settle()
        rows = self._db.execute(
            "SELECT signature, slot, block_time, failed, meta, raw, pre_tokens, post_tokens"
            " FROM transactions WHERE slot = ? ORDER BY id",
            (slot,),
        )
        return [_record(row) for row in rows]

    def count_between(self, first_slot: int, last_slot: int) -> int:
        self._settle()
        row = self._db.execute(
            "SELECT count(*) FROM transactions WHERE slot BETWEEN ? AND ?", (first_slot, last_slot)
        ).fetchone()
        return int(row[0])

    def slot_starts(self) -> list[SlotStart]:
        self._settle()
        rows = self._db.execute("SELECT start_slot, unix_ms, slot_ms FROM slot_times ORDER BY 1")
        return [SlotStart(*row) for row in rows]
