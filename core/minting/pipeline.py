"""The mint cycle: claim -> plan -> sign and persist -> send -> confirm -> finalize.

Steps 2-5 of DESIGN "Minting exactly once". The signed bytes are committed
before they are sent; only the same bytes are ever rebroadcast, so a batch has
one signature and can land at most once. A batch's outcome is decided from the
chain (confirmed, failed, or expired: never seen and past its last valid block
height), and recorded by the guarded transitions of core.minting.states.

Any exception (RPC down, database gone) aborts the cycle: what was persisted
stays, and the next cycle's recovery picks it up where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.errors import ChainError
from core.chain.factories import MintInstructionFactory
from core.chain.instructions import batch_memo
from core.chain.packing import build_mint_transaction, max_mints_per_transaction
from core.chain.signature_watch import SignatureWatch
from core.chain.signer import Signer, as_signer, sign_transactions
from core.chain.status import Confirmation, ConfirmationState
from core.chain.transactions import transaction_signature
from core.config import TokenizationConfig
from core.db.models import BatchStatus
from core.db.types import utcnow
from core.minting import states
from core.minting.accounts import TokenAccounts
from core.minting.claim import ClaimedBatch, claim_pending

log = logging.getLogger(__name__)

# A planned batch older than this belongs to a scheduler that stopped before signing.
STALE_PLANNED = timedelta(seconds=30)


@dataclass
class InFlight:
    batch_id: int
    signature: Signature
    raw_tx: bytes
    last_valid_block_height: int


@dataclass
class CycleReport:
    claimed_readings: int = 0
    batches_sent: int = 0
    confirmed: int = 0
    failed: int = 0
    expired: int = 0
    released: int = 0
    unresolved: int = 0
    errors: list[str] = field(default_factory=list)


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
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.target = target
        self.stop = stop or threading.Event()
        self.clock = clock
        self.max_in_flight = max_in_flight
        self.poll_interval = poll_interval
        self.rebroadcast_interval = rebroadcast_interval
        self.settle_timeout = settle_timeout
        self.max_cycle_secs = max_cycle_secs
        self.accounts = TokenAccounts(
            target.chain, target.fee_payer, target.factory, airdrop=target.airdrop
        )
        self.wallets_per_transaction = max_mints_per_transaction(
            target.factory, payer=target.fee_payer.pubkey
        )
        # Planned batches this process gave up on while the database was unreachable.
        self.unreleased: set[int] = set()

    # --- the cycle ---------------------------------------------------------------------

    def run_cycle(self, *, requested_by: int | None = None) -> CycleReport:
        """Finish what earlier cycles left open, then mint everything that is due.

        Claiming and settling interleave: while transactions wait for confirmation,
        newly due readings are claimed and sent, and every poll finalizes what the
        chain has decided. The cycle ends when nothing is due and nothing is in
        flight, when asked to stop, or after `max_cycle_secs` of continuous work
        (the scheduler then starts the next cycle with a fresh configuration).
        """
        report = CycleReport()
        self.recover(report, release_all_planned=False)
        in_flight: list[InFlight] = []
        started = last_broadcast = time.monotonic()
        while True:
            claimed: list[ClaimedBatch] = []
            busy = len(in_flight) >= self.max_in_flight
            working_too_long = time.monotonic() - started > self.max_cycle_secs
            if not (self.stop.is_set() or busy or working_too_long):
                claimed = self._claim(requested_by)
                report.claimed_readings += sum(len(batch.reading_ids) for batch in claimed)
                if claimed:
                    in_flight += self._sign_and_send(claimed, report)
            if in_flight:
                in_flight = self._poll(in_flight, report)
            if not claimed and not in_flight:
                break
            if self.stop.is_set() or (working_too_long and not claimed):
                report.unresolved += len(in_flight)  # recovery settles them next cycle
                break
            if not claimed:
                if time.monotonic() - last_broadcast >= self.rebroadcast_interval:
                    self._broadcast(in_flight)
                    last_broadcast = time.monotonic()
                self._pause()
        return report

    def _claim(self, requested_by: int | None) -> list[ClaimedBatch]:
        config = self.config()  # re-read for every claim: admins' changes apply at once
        with self.sessions() as session:
            return claim_pending(
                session,
                config,
                now=self.clock(),
                wallets_per_transaction=self.wallets_per_transaction,
                requested_by=requested_by,
            )

    def recover(self, report: CycleReport, *, release_all_planned: bool) -> None:
        """Release planned batches nobody will sign; settle signed ones (DESIGN step 5)."""
        now = self.clock()
        with self.sessions() as session:
            open_batches = states.open_batches(session)
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
                    )
                )
        if signed:
            log.info("recovering %d signed batch(es)", len(signed))
            self._watch(signed)
            self._broadcast(signed)
            self.settle(signed, report)

    # --- steps -------------------------------------------------------------------------

    def _sign_and_send(
        self, claimed: Sequence[ClaimedBatch], report: CycleReport
    ) -> list[InFlight]:
        try:
            destinations = self.accounts.ensure([w for b in claimed for w, _ in b.mints])
            blockhash, last_valid = self.target.chain.latest_blockhash()
            prepared = self._sign(claimed, destinations, blockhash, last_valid)
        except Exception:
            # Nothing of these batches was signed: give their readings back at once.
            self._release(claimed, report, reason="released: could not sign")
            raise
        with self.sessions() as session:
            kept = states.mark_signed_many(
                session,
                [
                    states.SignedBatch(
                        item.batch_id,
                        str(item.signature),
                        item.raw_tx,
                        str(blockhash),
                        item.last_valid_block_height,
                    )
                    for item in prepared
                ],
                now=self.clock(),
            )
        in_flight = [item for item in prepared if item.batch_id in kept]
        self._watch(in_flight)
        self._broadcast(in_flight)
        report.batches_sent += len(in_flight)
        return in_flight

    def _sign(
        self,
        claimed: Sequence[ClaimedBatch],
        destinations: dict[str, Pubkey],
        blockhash: Hash,
        last_valid: int,
    ) -> list[InFlight]:
        unsigned = [
            build_mint_transaction(
                self.target.factory,
                [(destinations[wallet], amount) for wallet, amount in batch.mints],
                memo_text=batch_memo(batch.id),
                blockhash=blockhash,
                payer=self.target.fee_payer.pubkey,
            )
            for batch in claimed
        ]
        # One call per signer for the whole claim: a remote signer signs them in one request.
        signed = sign_transactions(unsigned, self.target.signers)
        return [
            InFlight(batch.id, transaction_signature(tx), bytes(tx), last_valid)
            for batch, tx in zip(claimed, signed, strict=True)
        ]

    def _signed(
        self, batch: ClaimedBatch, destinations: dict[str, Pubkey], blockhash: Hash, last_valid: int
    ) -> InFlight:
        return self._sign([batch], destinations, blockhash, last_valid)[0]

    def _watch(self, batches: Sequence[InFlight]) -> None:
        if self.target.watch is not None:
            self.target.watch.watch(item.signature for item in batches)

    def _pause(self) -> None:
        """Wait for the next poll; a confirmation heard over pubsub ends the wait early."""
        watch = self.target.watch
        if watch is not None and watch.connected:
            watch.wait(self.poll_interval, self.stop)
        else:
            self.stop.wait(self.poll_interval)

    def _broadcast(self, batches: Sequence[InFlight]) -> None:
        """Send (or resend) stored bytes; a lost send is repaired by the next rebroadcast."""
        for item in batches:
            try:
                self.target.chain.send_raw(item.raw_tx, skip_preflight=True)
            except ChainError as exc:
                log.warning("send of batch %d failed (%s); will rebroadcast", item.batch_id, exc)

    def settle(self, in_flight: list[InFlight], report: CycleReport) -> None:
        """Poll until every batch is confirmed, failed or expired (or we stop or time out)."""
        waiting = list(in_flight)
        started = last_broadcast = time.monotonic()
        while waiting:
            waiting = self._poll(waiting, report)
            if not waiting:
                return
            if self.stop.is_set() or time.monotonic() - started > self.settle_timeout:
                report.unresolved += len(waiting)  # recovery settles them later
                return
            if time.monotonic() - last_broadcast >= self.rebroadcast_interval:
                self._broadcast(waiting)
                last_broadcast = time.monotonic()
            self._pause()

    def _poll(self, in_flight: list[InFlight], report: CycleReport) -> list[InFlight]:
        """One look at the chain; finalize what it decided, return what is still pending."""
        results = self.target.chain.confirmations(
            [(item.signature, item.last_valid_block_height) for item in in_flight]
        )
        pending = []
        for item, result in zip(in_flight, results, strict=True):
            if result.state is ConfirmationState.PENDING:
                pending.append(item)
            else:
                self._finalize(item, result, report)
        return pending

    def _finalize(self, item: InFlight, result: Confirmation, report: CycleReport) -> None:
        now = self.clock()
        with self.sessions() as session:
            if result.state is ConfirmationState.CONFIRMED:
                slot = result.status.slot if result.status else None
                if states.mark_confirmed(session, item.batch_id, slot=slot, now=now):
                    report.confirmed += 1
            elif result.state is ConfirmationState.FAILED:
                error = (result.status.error if result.status else None) or "failed on chain"
                config = self.config()
                if states.mark_failed(session, item.batch_id, error=error, config=config, now=now):
                    report.failed += 1
            elif states.mark_expired(session, item.batch_id, now=now):
                report.expired += 1

    def _release(self, claimed: Sequence[ClaimedBatch], report: CycleReport, reason: str) -> None:
        for batch in claimed:
            try:
                with self.sessions() as session:
                    if states.release_planned(session, batch.id, reason=reason, now=self.clock()):
                        report.released += 1
            except Exception:  # the database may be the reason we are here
                self.unreleased.add(batch.id)
                log.warning("could not release planned batch %d; the next cycle will", batch.id)
