"""Lookup tables for the token accounts the scheduler mints to again and again.

A wallet whose account was minted to through a legacy transaction for the second
time (RECURRING_MINTS) is added to a table: the fee payer creates the tables
(the GRX mint first, then up to 255 token accounts each), owns them and pays
their rent. Creating and extending are `lookup_table` operations of the same
outbox as the mints, so they are persisted before they are sent and their fees
and rent are recorded. Their outcome is applied from the operation's row:
confirmed entries record the slot, entries of a failed or expired step are
dropped (and a table whose creation never landed is abandoned).

An entry becomes active, and its wallet eligible for v0 transactions, only when
the chain shows it usable: the table read back holds the account, and the
confirmed slot is past the table's last extension (the warm-up rule). Until then
its wallet keeps going in legacy transactions. Transactions are compiled against
the tables as read from the chain, never against what the database believes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.chain.client import ChainClient
from core.chain.compute_budget import ComputeBudget
from core.chain.errors import ChainError
from core.chain.lookup_tables import LookupTable, build_table_transaction
from core.db.models import (
    BatchStatus,
    LookupTableEntry,
    LookupTableStatus,
    MintBatch,
    OperationKind,
)
from core.db.models import LookupTable as LookupTableRow
from core.minting import states
from core.minting.outbox import CycleReport, InFlight, Outbox
from core.minting.table_steps import plan_table_step

log = logging.getLogger(__name__)

RECURRING_MINTS = 2  # legacy mints to a wallet before its account joins a table
MAX_STEPS_PER_UPKEEP = 8  # table operations sent per upkeep
FAILED_STEP_PAUSE_SECS = 60.0  # a step that landed with an error paid a fee: do not hurry


class LookupTableUnavailable(ChainError):
    code = "lookup_table_unavailable"

    def __init__(self, address: str) -> None:
        super().__init__(f"lookup table {address} is not usable here")
        self.address = address  # the table to forget


def active_tables(session: Session, wallets: Sequence[str], *, mint: str) -> dict[str, str]:
    """wallet -> the table whose active entry holds its account for `mint`."""
    found: dict[str, str] = {}
    for start in range(0, len(wallets), 1000):
        chunk = list(wallets[start : start + 1000])
        rows = session.execute(
            select(LookupTableEntry.wallet, LookupTableEntry.table_address)
            .join(LookupTableRow, LookupTableRow.address == LookupTableEntry.table_address)
            .where(
                LookupTableEntry.wallet.in_(chunk),
                LookupTableEntry.active.is_(True),
                LookupTableRow.mint == mint,
            )
        )
        found.update(dict(rows.all()))
    return found


class LookupTables:
    def __init__(
        self,
        outbox: Outbox,
        chain: ChainClient,
        *,
        authority: Pubkey,
        mint: Pubkey,
        compute_budget: Callable[[], ComputeBudget],
    ) -> None:
        self.outbox = outbox
        self.chain = chain
        self.authority = authority
        self.mint = mint
        self.compute_budget = compute_budget
        self._legacy_mints: Counter[str] = Counter()
        self._candidates: dict[str, Pubkey] = {}  # wallet -> token account, to add
        self._on_chain: dict[str, LookupTable] = {}
        self._work = True  # something may be waiting: settled steps, inactive entries
        self._paused_until = 0.0  # monotonic: no new steps before (after a failed one)
        self._halted = False  # upkeep failed this cycle: no table work until the next

    def tables_of(self, session: Session, wallets: Sequence[str]) -> dict[str, str]:
        return active_tables(session, wallets, mint=str(self.mint))

    def note_legacy(self, accounts: dict[str, Pubkey]) -> None:
        """These wallets were just minted to through a legacy transaction."""
        self._legacy_mints.update(accounts.keys())
        for wallet, account in accounts.items():
            if self._legacy_mints[wallet] >= RECURRING_MINTS:
                self._candidates[wallet] = account
                del self._legacy_mints[wallet]

    def tables_holding(
        self, addresses: Sequence[str], accounts: Sequence[Pubkey]
    ) -> list[AddressLookupTableAccount]:
        """The tables as the chain holds them, for compiling a transaction to `accounts`.

        Snapshots are read again when together they lack an account (another
        scheduler may have activated it since): compiled only against the chain.
        """
        tables = [self.table(address) for address in addresses]
        held = {key for table in tables for key in table.addresses}
        if set(accounts) <= held:
            return tables
        return [self.table(address, refresh=True) for address in addresses]

    def table(self, address: str, *, refresh: bool = False) -> AddressLookupTableAccount:
        """The table as the chain holds it (a snapshot, read again when `refresh`)."""
        table = self._on_chain.get(address)
        if table is None or refresh:
            [table] = self.chain.lookup_tables([Pubkey.from_string(address)])
            if table is None or not table.addresses or table.addresses[0] != self.mint:
                raise LookupTableUnavailable(address)
            self._on_chain[address] = table
        return AddressLookupTableAccount(table.address, list(table.addresses))

    def forget(self, address: str) -> None:
        """The table could not be used: its wallets go back to legacy transactions."""
        self._on_chain.pop(address, None)
        with self.outbox.sessions() as session:
            session.execute(
                update(LookupTableEntry)
                .where(LookupTableEntry.table_address == address)
                .values(active=False, confirmed_slot=None)
            )
            session.commit()

    # --- upkeep, once per cycle step -------------------------------------------------------

    def begin_cycle(self) -> None:
        """A new mint cycle: table work a failure paused in the last one may resume."""
        if self._halted:
            self._halted = False
            self._work = True

    def upkeep(self, report: CycleReport) -> list[InFlight]:
        """Apply settled steps, activate warmed-up entries, send steps for new candidates.

        Never raises: a failure (the node, the database, the signer, a step that
        cannot be built) pauses table work until the next cycle, and minting goes on
        in the transactions it can build; steps planned but not sent are released.
        """
        if self._halted or not (self._work or self._candidates):
            return []
        try:
            self._work = False
            self._apply_settled()
            self._activate()
            hold_on = time.monotonic() < self._paused_until
            sent = self._extend() if self._candidates and not hold_on else []
        except Exception as exc:
            self._halted = True
            self._work = True  # look again next cycle
            log.warning("lookup table upkeep paused until the next cycle: %r", exc)
            report.errors.append(f"lookup tables: {type(exc).__name__}: {exc}")
            return []
        report.operations_sent += len(sent)
        return sent

    def operation_settled(self) -> None:
        self._work = True

    def _apply_settled(self) -> None:
        with self.outbox.sessions() as session:
            rows = session.execute(
                select(LookupTableEntry.operation_id, MintBatch.status, MintBatch.slot)
                .join(MintBatch, MintBatch.id == LookupTableEntry.operation_id)
                .where(
                    LookupTableEntry.confirmed_slot.is_(None),
                    MintBatch.status.in_(
                        [
                            BatchStatus.CONFIRMED.value,
                            BatchStatus.FAILED.value,
                            BatchStatus.EXPIRED.value,
                        ]
                    ),
                )
                .distinct()
            ).all()
            for operation_id, status, slot in rows:
                self._apply(session, operation_id, status, slot)
            session.commit()
            waiting = session.scalar(
                select(LookupTableEntry.id).where(LookupTableEntry.active.is_(False)).limit(1)
            )
        self._work = self._work or waiting is not None

    def _apply(self, session: Session, operation_id: int, status: str, slot: int | None) -> None:
        tables = session.scalars(
            select(LookupTableRow).where(LookupTableRow.operation_id == operation_id)
        ).all()
        if status == BatchStatus.CONFIRMED.value:
            session.execute(
                update(LookupTableEntry)
                .where(LookupTableEntry.operation_id == operation_id)
                .values(confirmed_slot=slot)
            )
            for table in tables:
                table.status = LookupTableStatus.READY.value
            return
        entries = session.scalars(
            select(LookupTableEntry).where(LookupTableEntry.operation_id == operation_id)
        ).all()
        self._drop(session, entries)
        if status == BatchStatus.FAILED.value:
            self._paused_until = time.monotonic() + FAILED_STEP_PAUSE_SECS
        for table in tables:  # its creation never landed
            table.status = LookupTableStatus.ABANDONED.value
        log.info("lookup table step %d %s: its entries were dropped", operation_id, status)

    def _drop(self, session: Session, entries: Sequence[LookupTableEntry]) -> None:
        """Forget entries that will never be usable; their wallets are candidates again."""
        for entry in entries:
            table = session.get(LookupTableRow, entry.table_address)
            if table is not None:
                table.entries -= 1
            self._candidates[entry.wallet] = Pubkey.from_string(entry.account)
            session.delete(entry)

    def _activate(self) -> None:
        with self.outbox.sessions() as session:
            addresses = list(
                session.scalars(
                    select(LookupTableEntry.table_address)
                    .where(
                        LookupTableEntry.confirmed_slot.is_not(None),
                        LookupTableEntry.active.is_(False),
                    )
                    .distinct()
                )
            )
        if not addresses:
            return
        slot = self.chain.slot()
        tables = self.chain.lookup_tables([Pubkey.from_string(a) for a in addresses])
        with self.outbox.sessions() as session:
            for address, table in zip(addresses, tables, strict=True):
                row = session.get(LookupTableRow, address)
                ours = (
                    table is not None
                    and row is not None
                    and str(table.authority) == row.authority  # whoever created it
                    and table.addresses[:1] == (self.mint,)
                )
                if not ours:
                    log.warning("lookup table %s is not ours on chain: not used", address)
                    self._abandon(session, address)
                    continue
                assert table is not None
                usable = table.addresses[: table.active_count(slot)]
                if not usable:
                    self._work = True  # still warming up: look again
                    continue
                self._on_chain[address] = table
                activated = session.execute(
                    update(LookupTableEntry)
                    .where(
                        LookupTableEntry.table_address == address,
                        LookupTableEntry.confirmed_slot.is_not(None),
                        LookupTableEntry.active.is_(False),
                        LookupTableEntry.account.in_([str(key) for key in usable]),
                    )
                    .values(active=True)
                ).rowcount
                pending = session.scalar(
                    select(LookupTableEntry.id)
                    .where(
                        LookupTableEntry.table_address == address,
                        LookupTableEntry.active.is_(False),
                    )
                    .limit(1)
                )
                self._work = self._work or pending is not None
                log.debug("lookup table %s: %d entries active", address, activated)
            session.commit()

    def _abandon(self, session: Session, address: str) -> None:
        row = session.get(LookupTableRow, address)
        if row is not None:
            row.status = LookupTableStatus.ABANDONED.value
        entries = session.scalars(
            select(LookupTableEntry).where(LookupTableEntry.table_address == address)
        ).all()
        self._drop(session, entries)
        self._on_chain.pop(address, None)

    def _extend(self) -> list[InFlight]:
        """Plan, sign and persist table steps for the candidates; returns them in flight.

        Each step is committed `planned` before it is built; when building, signing
        or persisting fails, the steps not persisted are released at once (their
        entries are dropped and their wallets become candidates again).
        """
        budget = self.compute_budget()
        blockhash: tuple[Hash, int] | None = None
        unsigned: list[tuple[int, Transaction, int, str]] = []
        planned: list[int] = []
        try:
            for _ in range(MAX_STEPS_PER_UPKEEP):
                if not self._candidates:
                    break
                with self.outbox.sessions() as session:
                    step = plan_table_step(
                        session,
                        self.outbox,
                        self._candidates,
                        authority=self.authority,
                        mint=self.mint,
                        budget=budget,
                        recent_slot=self.chain.slot,
                    )
                if step is None:
                    break
                for wallet in step.wallets:
                    self._candidates.pop(wallet, None)
                self._work = True
                planned.append(step.operation_id)
                blockhash = blockhash or self.chain.latest_blockhash()
                tx = build_table_transaction(
                    step.instructions, self.authority, blockhash[0], budget
                )
                kind = OperationKind.LOOKUP_TABLE.value
                unsigned.append((step.operation_id, tx, blockhash[1], kind))
            if not unsigned or blockhash is None:
                return []
            in_flight = self.outbox.persist(self.outbox.sign_all(unsigned), blockhash[0])
        except Exception:
            self._release(planned)
            raise
        self.outbox.broadcast(in_flight)
        return in_flight

    def _release(self, operation_ids: Sequence[int]) -> None:
        """Steps that were planned and never sent: expired now, so their entries drop."""
        for operation_id in operation_ids:
            try:
                with self.outbox.sessions() as session:
                    states.release_planned(
                        session,
                        operation_id,
                        reason="released: lookup table step not sent",
                        now=self.outbox.clock(),
                    )
            except Exception:  # the database may be what failed: recovery releases it
                log.warning("could not release lookup table step %d", operation_id)
