"""The mint cycle: claim -> plan -> sign and persist -> send -> confirm -> finalize.

Steps 2-5 of DESIGN "Minting exactly once", through the outbox (core.minting.outbox):
the signed bytes are committed before they are sent, whatever the transaction
version, and only the same bytes are ever rebroadcast, so a batch has one
signature and can land at most once. Wallets whose token account sits in an
active lookup table go in v0 transactions, the others in legacy ones; every
transaction asks for the compute units its instructions cost (and pays the
configured priority fee). What each landed transaction cost is recorded from the
chain (core.minting.costs), and the fee payer's balance is read every cycle.

Any exception (RPC down, database gone) aborts the cycle: what was persisted
stays, and the next cycle's recovery picks it up where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.compute_budget import ComputeBudget
from core.chain.factories import MintInstructionFactory
from core.chain.mint_setup import ensure_sol_balance
from core.chain.signature_watch import SignatureWatch
from core.chain.signer import Signer, as_signer
from core.config import TokenizationConfig
from core.db.models import BatchStatus, OperationKind
from core.db.types import utcnow
from core.minting import costs, states
from core.minting.accounts import TokenAccounts, hold_without_accounts
from core.minting.batch_transactions import build_batch_transaction, mint_capacity
from core.minting.claim import Claim, ClaimedBatch, claim_due
from core.minting.fill import Capacity
from core.minting.lookup_tables import LookupTables, LookupTableUnavailable
from core.minting.outbox import CycleReport, InFlight, Outbox

log = logging.getLogger(__name__)

SIGNATURE_FEE = 5_000  # lamports per signature, the cluster's base fee

# A planned batch older than this belongs to a scheduler that stopped before signing.
STALE_PLANNED = timedelta(seconds=30)
PAYER_READ_SECS = 2.0  # the fee payer's balance is read at most this often

__all__ = ["CycleReport", "InFlight", "MintPipeline", "MintTarget"]


@dataclass(frozen=True)
class MintTarget:
    """What the pipeline mints with: the client, the signers and the mint instruction.

    The authority signs only what needs the mint authority; the fee payer (the
    authority itself when none is given) pays fees and rent and signs every
    transaction first, so its signature is the transaction's id.
    """

    chain: ChainClient
    authority: Signer
    factory: MintInstructionFactory
    airdrop: bool = False  # the embedded localnet's faucet tops up the fee payer
    payer: Signer | None = None
    # Confirmations heard over pubsub end a wait early; the poll still settles every batch.
    watch: SignatureWatch | None = None

    def __post_init__(self) -> None:
        # A bare Keypair is accepted where a signer is expected (tests, tools).
        object.__setattr__(self, "authority", as_signer(self.authority))
        if self.payer is not None:
            object.__setattr__(self, "payer", as_signer(self.payer))

    @property
    def fee_payer(self) -> Signer:
        return self.payer or self.authority

    @property
    def signers(self) -> tuple[Signer, ...]:
        return (self.fee_payer, self.authority)


class MintPipeline:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Callable[[], TokenizationConfig],
        target: MintTarget,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_in_flight: int = 120,
        poll_interval: float = 0.15,
        rebroadcast_interval: float = 2.0,
        settle_timeout: float = 90.0,
        max_cycle_secs: float = 30.0,
        lookup_tables: bool = True,
        payer_read_interval: float = PAYER_READ_SECS,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.target = target
        self.stop = stop or threading.Event()
        self.clock = clock
        if max_in_flight < 1:  # a cycle with no place in flight could never mint
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self.rebroadcast_interval = rebroadcast_interval
        self.settle_timeout = settle_timeout
        self.max_cycle_secs = max_cycle_secs
        self.outbox = Outbox(
            sessions,
            target.chain,
            target.signers,
            config,
            stop=self.stop,
            clock=clock,
            poll_interval=poll_interval,
            rebroadcast_interval=rebroadcast_interval,
            settle_timeout=settle_timeout,
            watch=target.watch,
        )
        self.accounts = TokenAccounts(
            target.chain,
            target.factory,
            self.outbox,
            self.fee_payer,
            compute_budget=self._budget,
            airdrop=target.airdrop,
        )
        self.lookup = (
            LookupTables(
                self.outbox,
                target.chain,
                authority=target.fee_payer.pubkey,
                mint=target.factory.mint,
                compute_budget=self._budget,
            )
            if lookup_tables
            else None
        )
        # Planned batches this process gave up on while the database was unreachable.
        self.unreleased: set[int] = set()
        self._uncosted: list[int] = []  # landed operations whose cost is not yet recorded
        self.payer_read_interval = payer_read_interval
        self._payer_read_at: float | None = None
        self._backfilled = False

    @property
    def fee_payer(self) -> Pubkey:
        """Who pays every fee and rent, and owns the lookup tables (what the alarm watches)."""
        return self.target.fee_payer.pubkey

    @property
    def wallets_per_transaction(self) -> int:
        """Mints per legacy transaction at the current settings."""
        return self.capacity(self.config()).legacy

    def _budget(self) -> ComputeBudget:
        return ComputeBudget(self.config().priority_fee_microlamports)

    def capacity(self, config: TokenizationConfig) -> Capacity:
        """MintTo per transaction, measured for the factory, the payer and the budget."""
        budget = ComputeBudget(config.priority_fee_microlamports)
        return mint_capacity(
            self.target.factory, budget, payer=self.fee_payer, versioned=self.lookup is not None
        )

    # --- the cycle ---------------------------------------------------------------------

    def run_cycle(self, *, requested_by: int | None = None) -> CycleReport:
        """Finish what earlier cycles left open, then mint everything that is due.

        Claiming and settling interleave: while transactions wait for confirmation,
        newly due readings are claimed and sent, and every poll finalizes what the
        chain has decided. The cycle ends when nothing is due and nothing is in
        flight, when asked to stop, or after `max_cycle_secs` of continuous work
        (the scheduler then starts the next cycle with a fresh configuration).
        `report.next_due_at` says when readings left waiting become due.
        """
        report = CycleReport()
        if self.lookup is not None:
            self.lookup.begin_cycle()
        self.recover(report, release_all_planned=False)
        self._read_fee_payer()
        in_flight: list[InFlight] = []
        started = last_broadcast = time.monotonic()
        while True:
            claimed: list[ClaimedBatch] = []
            busy = len(in_flight) >= self.max_in_flight
            working_too_long = time.monotonic() - started > self.max_cycle_secs
            if not (self.stop.is_set() or busy or working_too_long):
                claim, config = self._claim(requested_by, self.max_in_flight - len(in_flight))
                report.next_due_at = claim.next_due_at
                claimed = claim.batches
                report.claimed_readings += sum(len(batch.reading_ids) for batch in claimed)
                if claimed:
                    in_flight += self._sign_and_send(claimed, report, config)
                if self.lookup is not None:
                    in_flight += self.lookup.upkeep(report)
            if in_flight:
                in_flight = self._poll(in_flight, report)
            self._record_costs()
            if not claimed and not in_flight:
                if busy:
                    continue  # what was in flight has settled: claim again before ending
                break
            if self.stop.is_set() or (working_too_long and not claimed):
                report.unresolved += len(in_flight)  # recovery settles them next cycle
                break
            if not claimed:
                if time.monotonic() - last_broadcast >= self.rebroadcast_interval:
                    self.outbox.broadcast(in_flight)
                    last_broadcast = time.monotonic()
                self.outbox.pause()
        return report

    def _claim(self, requested_by: int | None, room: int = 0) -> tuple[Claim, TokenizationConfig]:
        """Every transaction due, as many as there is room for in flight (and batch_size)."""
        config = self.config()  # re-read for every claim: admins' changes apply at once
        with self.sessions() as session:
            claim = claim_due(
                session,
                config,
                now=self.clock(),
                capacity=self.capacity(config),
                tables_of=self.lookup.tables_of if self.lookup else None,
                requested_by=requested_by,
                room=room,
            )
        return claim, config

    def recover(self, report: CycleReport, *, release_all_planned: bool) -> None:
        """Release planned batches nobody will sign; settle signed ones (DESIGN step 5)."""
        now = self.clock()
        with self.sessions() as session:
            open_batches = states.open_batches(session)
            if not self._backfilled:
                self._uncosted += costs.uncosted_operations(session, now=now)
                self._backfilled = True
        signed = []
        for batch in open_batches:
            if batch.status == BatchStatus.PLANNED:
                ours = batch.id in self.unreleased  # we gave up on it, but could not say so
                if release_all_planned or ours or now - batch.created_at > STALE_PLANNED:
                    with self.sessions() as session:
                        if states.release_planned(
                            session, batch.id, reason="released: never signed", now=now
                        ):
                            report.released += 1
                    self.unreleased.discard(batch.id)
            elif batch.signature and batch.raw_tx and batch.last_valid_block_height is not None:
                signed.append(
                    InFlight(
                        batch.id,
                        Signature.from_string(batch.signature),
                        bytes(batch.raw_tx),
                        batch.last_valid_block_height,
                        batch.kind,
                    )
                )
        if signed:
            log.info("recovering %d signed batch(es)", len(signed))
            self.outbox.watch(signed)
            self.outbox.broadcast(signed)
            self.settle(signed, report)
        self._record_costs()

    # --- steps -------------------------------------------------------------------------

    def _sign_and_send(
        self,
        claimed: Sequence[ClaimedBatch],
        report: CycleReport,
        config: TokenizationConfig | None = None,
    ) -> list[InFlight]:
        in_flight = self.outbox.persist(*self._sign(claimed, report, config or self.config()))
        self.outbox.broadcast(in_flight)
        report.batches_sent += len(in_flight)
        return in_flight

    def _sign(
        self, claimed: Sequence[ClaimedBatch], report: CycleReport, config: TokenizationConfig
    ) -> tuple[list[InFlight], Hash]:
        """Every batch built and signed (not yet persisted); holds wallets without accounts."""
        try:
            wallets = [w for b in claimed for w, _ in b.mints]
            destinations, missing = self.accounts.resolve(
                wallets, create=config.create_token_accounts, report=report
            )
            if missing:
                claimed = self._hold(claimed, missing, config)
            # A dry fee payer stops minting here, loudly, instead of sending what cannot land.
            ensure_sol_balance(
                self.target.chain,
                self.fee_payer,
                len(claimed) * SIGNATURE_FEE * 2,
                airdrop=self.target.airdrop,
            )
            blockhash, last_valid = self.target.chain.latest_blockhash()
            budget = ComputeBudget(config.priority_fee_microlamports)
            claimed, unsigned = self._build_all(claimed, destinations, blockhash, budget, report)
            # One call per signer for the whole claim: a remote signer signs them at once.
            prepared = self.outbox.sign_all(
                [
                    (batch.id, tx, last_valid, OperationKind.MINT.value)
                    for batch, tx in zip(claimed, unsigned, strict=True)
                ]
            )
        except Exception:
            # Nothing of these batches was signed: give their readings back at once.
            self._release(claimed, report, reason="released: could not sign")
            raise
        return prepared, blockhash

    def _build_all(
        self,
        claimed: Sequence[ClaimedBatch],
        destinations: dict[str, Pubkey],
        blockhash: Hash,
        budget: ComputeBudget,
        report: CycleReport,
    ) -> tuple[list[ClaimedBatch], list[Transaction | VersionedTransaction]]:
        """Build every batch; one whose table cannot be used is released, not the claim.

        Its table's entries are made inactive, so its readings are claimed again at
        once, in legacy transactions: a lookup table never stops minting.
        """
        built: list[ClaimedBatch] = []
        unsigned: list[Transaction | VersionedTransaction] = []
        for batch in claimed:
            try:
                unsigned.append(self._unsigned(batch, destinations, blockhash, budget))
            except LookupTableUnavailable as exc:
                log.warning("batch %d goes back to legacy minting: %s", batch.id, exc)
                self._release([batch], report, reason=f"released: {exc}")
                continue
            built.append(batch)
        return built, unsigned

    def _unsigned(
        self,
        batch: ClaimedBatch,
        destinations: dict[str, Pubkey],
        blockhash: Hash,
        budget: ComputeBudget,
    ) -> Transaction | VersionedTransaction:
        try:
            tx = build_batch_transaction(
                self.target.factory,
                batch,
                destinations,
                blockhash=blockhash,
                budget=budget,
                payer=self.fee_payer,
                lookup=self.lookup,
            )
        except LookupTableUnavailable as exc:
            assert self.lookup is not None  # only v0 batches use tables
            self.lookup.forget(exc.address)  # its wallets go back to legacy transactions
            raise
        if not batch.tables and self.lookup is not None:
            self.lookup.note_legacy({wallet: destinations[wallet] for wallet, _ in batch.mints})
        return tx

    def _signed(
        self, batch: ClaimedBatch, destinations: dict[str, Pubkey], blockhash: Hash, last_valid: int
    ) -> InFlight:
        tx = self._unsigned(batch, destinations, blockhash, self._budget())
        [item] = self.outbox.sign_all([(batch.id, tx, last_valid, OperationKind.MINT.value)])
        return item

    def _hold(
        self, claimed: Sequence[ClaimedBatch], missing: list[str], config: TokenizationConfig
    ) -> list[ClaimedBatch]:
        now = self.clock()
        until = now + timedelta(seconds=config.polling_interval_secs)
        return hold_without_accounts(
            self.sessions, claimed, missing, mint=self.target.factory.mint, until=until, now=now
        )

    def settle(self, in_flight: list[InFlight], report: CycleReport) -> None:
        """Poll until every batch is confirmed, failed or expired (or we stop or time out)."""
        self.outbox.settle(in_flight, report)
        self._after_settling()

    def _poll(self, in_flight: list[InFlight], report: CycleReport) -> list[InFlight]:
        pending = self.outbox.poll(in_flight, report)
        self._after_settling()
        return pending

    def _after_settling(self) -> None:
        settled = self.outbox.take_settled()
        if settled and self.lookup is not None:
            self.lookup.operation_settled()
        self._uncosted += settled

    def _record_costs(self) -> None:
        if not self._uncosted:
            return
        self._uncosted = costs.record_costs(
            self.sessions, self.target.chain, self._uncosted, now=self.clock()
        )

    def _read_fee_payer(self) -> None:
        last = self._payer_read_at
        if last is not None and time.monotonic() - last < self.payer_read_interval:
            return
        self._payer_read_at = time.monotonic()
        costs.read_fee_payer(
            self.sessions,
            self.target.chain,
            self.fee_payer,
            min_sol=self.config().fee_payer_min_sol,
            now=self.clock(),
        )

    def _release(self, claimed: Sequence[ClaimedBatch], report: CycleReport, reason: str) -> None:
        for batch in claimed:
            try:
                with self.sessions() as session:
                    if states.release_planned(session, batch.id, reason=reason, now=self.clock()):
                        report.released += 1
            except Exception:  # the database may be the reason we are here
                self.unreleased.add(batch.id)
                log.warning("could not release planned batch %d; the next cycle will", batch.id)
