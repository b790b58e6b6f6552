"""Fill or wait: which waiting wallets go out now, and in which transactions.

Every transaction costs the same 5,000 lamports per signature however many
MintTo it carries, so a transaction goes out when it is full, or when the oldest
reading it would carry has waited `max_wait` (or an admin asked: "mint now").
A transaction that goes out is then filled with whatever else waits, because
everything it carries no longer needs a transaction of its own.

Wallets whose token account sits in an active lookup table go in v0
transactions (capacity shrinks by two mints per extra table used); the others go
in legacy ones. Pure: plain values in, plain values out, so the rules are tested
without a database or a chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class WaitingWallet:
    wallet: str
    table: str | None  # the active lookup table holding its token account, if any
    oldest: datetime  # acceptance time of its oldest waiting reading
    forced: bool = False  # an admin asked for one of its readings: due now
    readings: int = 1


@dataclass(frozen=True)
class Capacity:
    """MintTo per transaction: legacy, and v0 by the number of tables used (index 0: one)."""

    legacy: int
    by_tables: tuple[int, ...] = ()

    def versioned(self, tables: int) -> int:
        return self.by_tables[tables - 1] if 0 < tables <= len(self.by_tables) else 0


@dataclass
class PlannedTransaction:
    wallets: list[WaitingWallet] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # empty: a legacy transaction
    full: bool = False

    @property
    def oldest(self) -> datetime:
        return min(wallet.oldest for wallet in self.wallets)


@dataclass(frozen=True)
class FillPlan:
    transactions: list[PlannedTransaction]  # to send now, most urgent first
    next_due_at: datetime | None  # when the oldest wallet left waiting becomes due


def choose_transactions(
    waiting: Sequence[WaitingWallet],
    capacity: Capacity,
    *,
    now: datetime,
    max_wait: timedelta,
) -> FillPlan:
    """The transactions to send now (full ones, then due ones filled up) and the next deadline.

    `waiting` is oldest first and names each wallet once.
    """
    if capacity.legacy < 1:
        raise ValueError("a legacy transaction must hold at least one mint")
    cutoff = now - max_wait
    remaining = list(waiting)
    if not capacity.by_tables:  # no versioned transactions: every wallet goes legacy
        remaining = [replace(w, table=None) if w.table else w for w in remaining]
    transactions = _full_transactions(remaining, capacity)
    taken = {id(w) for tx in transactions for w in tx.wallets}
    remaining = [w for w in remaining if id(w) not in taken]
    while True:
        due = next((w for w in remaining if w.forced or w.oldest <= cutoff), None)
        if due is None:
            break
        tx = _filled_around(due, remaining, capacity)
        transactions.append(tx)
        taken = {id(w) for w in tx.wallets}
        remaining = [w for w in remaining if id(w) not in taken]
    transactions.sort(key=lambda tx: tx.oldest)
    next_due = min((w.oldest + max_wait for w in remaining), default=None)
    return FillPlan(transactions, next_due)


def _full_transactions(
    waiting: list[WaitingWallet], capacity: Capacity
) -> list[PlannedTransaction]:
    """As many transactions as one table (or the legacy group) fills completely."""
    groups: dict[str | None, list[WaitingWallet]] = {}
    for wallet in waiting:
        groups.setdefault(wallet.table, []).append(wallet)
    full = []
    for table, members in groups.items():
        size = capacity.legacy if table is None else capacity.versioned(1)
        for start in range(0, len(members) - size + 1, size):
            chunk = members[start : start + size]
            full.append(PlannedTransaction(chunk, [] if table is None else [table], full=True))
    return full


def _filled_around(
    due: WaitingWallet, remaining: list[WaitingWallet], capacity: Capacity
) -> PlannedTransaction:
    """A transaction carrying `due`, filled with the oldest others that fit beside it."""
    if due.table is None:
        legacy = [w for w in remaining if w.table is None and w is not due]
        members = [due, *legacy[: capacity.legacy - 1]]
        return PlannedTransaction(members, [], full=len(members) == capacity.legacy)
    members = [w for w in remaining if w.table == due.table][: capacity.versioned(1)]
    if due not in members:  # `remaining` is oldest first, so due is the oldest of its table
        members = [due, *members[:-1]]
    tables = [due.table]
    by_table: dict[str, list[WaitingWallet]] = {}
    for wallet in remaining:
        if wallet.table is not None and wallet.table != due.table:
            by_table.setdefault(wallet.table, []).append(wallet)
    # Other tables, those holding the oldest wallets first (they would be due next).
    for table, others in sorted(by_table.items(), key=lambda item: item[1][0].oldest):
        room = capacity.versioned(len(tables) + 1) - len(members)
        if room <= 0:
            break
        members += others[:room]
        tables.append(table)
    full = len(members) == capacity.versioned(len(tables))
    return PlannedTransaction(members, tables, full=full)
