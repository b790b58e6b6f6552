"""The persisted-signature outbox every chain write goes through, whatever it does.

A row of mint_batches is a chain operation: a mint, or (by `kind`) the creation of
token accounts, a lookup table step, a SetAuthority or a certificate's issue,
transfer, retirement or cancellation (core.certificates). Whatever it does, its transaction is
signed once through core.chain.transactions.sign_transaction, the signature and
bytes are committed (`signed`) before the first send, only those bytes are ever
resent, and its outcome is decided from the chain: confirmed, failed (landed with
an error) or expired (never seen and past its last valid block height). Mints
settle through core.minting.states (readings, events); other operations only
change status, and whoever owns them reads the outcome from the row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from solders.hash import Hash
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from core.chain.client import ChainClient
from core.chain.errors import ChainError, SignerError
from core.chain.signature_watch import SignatureWatch
from core.chain.signer import Signer, sign_transactions
from core.chain.status import Confirmation, ConfirmationState
from core.chain.transactions import transaction_signature
from core.config import TokenizationConfig
from core.db.models import CERTIFICATE_KINDS, BatchStatus, MintBatch, OperationKind
from core.events import EventType, publish
from core.minting import states

log = logging.getLogger(__name__)

# Operations the mint authority signs (the others only the fee payer): the rows record it.
AUTHORITY_KINDS = {
    OperationKind.MINT.value,
    OperationKind.SET_AUTHORITY.value,
    *CERTIFICATE_KINDS,  # the authority is the certificate mint's authority and delegate
}


@dataclass
class InFlight:
    batch_id: int
    signature: Signature
    raw_tx: bytes
    last_valid_block_height: int
    kind: str = OperationKind.MINT.value


@dataclass
class CycleReport:
    claimed_readings: int = 0
    batches_sent: int = 0
    confirmed: int = 0
    failed: int = 0
    expired: int = 0
    released: int = 0
    unresolved: int = 0
    operations_sent: int = 0  # token accounts and lookup tables (not counted above)
    operations_settled: int = 0
    next_due_at: datetime | None = None  # when waiting readings become due
    errors: list[str] = field(default_factory=list)


class Outbox:
    """Sign, persist, send and settle outbox rows; the signers are the only keys used."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        signers: Sequence[Signer],
        config: Callable[[], TokenizationConfig],
        *,
        stop: threading.Event,
        clock: Callable[[], datetime],
        poll_interval: float,
        rebroadcast_interval: float,
        settle_timeout: float,
        watch: SignatureWatch | None = None,
    ) -> None:
        self.sessions = sessions
        self.chain = chain
        self.signers = list(signers)
        self.config = config
        self.stop = stop
        self.clock = clock
        self.poll_interval = poll_interval
        self.rebroadcast_interval = rebroadcast_interval
        self.settle_timeout = settle_timeout
        self._watch = watch
        # The authority signs last (fee payer first): it is what each row records.
        self.authority = self.signers[-1]
        self.signer_down = False  # signer_unavailable published and not yet cleared
        self.settled: list[int] = []  # confirmed or failed since last asked: costs to record

    # --- operations other than mints ------------------------------------------------------

    def plan(
        self,
        session: Session,
        kind: OperationKind,
        payload: dict[str, Any],
        *,
        total_base_units: int = 0,
    ) -> int:
        """Insert a planned operation in the caller's transaction (the caller commits).

        `total_base_units` is what the operation moves of its own mint (a certificate
        operation's Wh); GRX reconciliation counts mint rows only.
        """
        operation_id = session.scalar(
            insert(MintBatch)
            .values(
                status=BatchStatus.PLANNED.value,
                kind=kind.value,
                payload=payload,
                attempt=0,
                total_readings=0,
                total_base_units=total_base_units,
                created_at=self.clock(),
                version="legacy",
            )
            .returning(MintBatch.id)
        )
        assert operation_id is not None
        return operation_id

    # --- signing and persisting -----------------------------------------------------------

    def sign_all(
        self, unsigned: Sequence[tuple[int, Transaction | VersionedTransaction, int, str]]
    ) -> list[InFlight]:
        """Sign (batch id, transaction, last valid height, kind) items: one call per signer.

        Nothing is signed anywhere else (core.chain.signer.sign_transactions).
        """
        if not unsigned:
            return []
        try:
            signed = sign_transactions([tx for _, tx, _, _ in unsigned], self.signers)
        except SignerError as exc:
            self._signer_unavailable(exc, len(unsigned))
            raise
        if self.signer_down:
            log.info("signer %s is signing again", self.authority.name)
            self.signer_down = False
        return [
            InFlight(batch_id, transaction_signature(tx), bytes(tx), last_valid, kind)
            for (batch_id, _, last_valid, kind), tx in zip(unsigned, signed, strict=True)
        ]

    def persist(self, prepared: Sequence[InFlight], blockhash: Hash) -> list[InFlight]:
        """Commit the signed bytes (planned -> signed); only what is still ours comes back."""
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
                        signer=self.authority.name if item.kind in AUTHORITY_KINDS else None,
                        signer_key_version=(
                            self.authority.key_version if item.kind in AUTHORITY_KINDS else None
                        ),
                    )
                    for item in prepared
                ],
                now=self.clock(),
            )
        in_flight = [item for item in prepared if item.batch_id in kept]
        self.watch(in_flight)
        return in_flight

    def _signer_unavailable(self, exc: SignerError, batches: int) -> None:
        """Nothing was signed; say so once per outage (the caller releases and aborts)."""
        log.warning("signer %s unavailable: %s", self.authority.name, exc)
        if self.signer_down:
            return
        try:
            with self.sessions() as session:
                publish(
                    session,
                    EventType.SIGNER_UNAVAILABLE,
                    {
                        "signer": self.authority.name,
                        "key_version": self.authority.key_version,
                        "public_key": str(self.authority.pubkey),
                        "error_code": exc.code,
                        "error": str(exc),
                        "batches_released": batches,
                    },
                )
                session.commit()
            self.signer_down = True
        except Exception:  # the database may be down too; say it next time
            log.exception("could not record signer_unavailable")

    def watch(self, items: Sequence[InFlight]) -> None:
        """Subscribe to their signatures (pubsub), so a confirmation ends a wait early."""
        if self._watch is not None:
            self._watch.watch(item.signature for item in items)

    def pause(self) -> None:
        """Wait for the next poll; a confirmation heard over pubsub ends the wait early."""
        if self._watch is not None and self._watch.connected:
            self._watch.wait(self.poll_interval, self.stop)
        else:
            self.stop.wait(self.poll_interval)

    def broadcast(self, items: Sequence[InFlight]) -> None:
        """Send (or resend) stored bytes; a lost send is repaired by the next rebroadcast."""
        for item in items:
            try:
                self.chain.send_raw(item.raw_tx, skip_preflight=True)
            except ChainError as exc:
                log.warning("send of batch %d failed (%s); will rebroadcast", item.batch_id, exc)

    # --- settling ---------------------------------------------------------------------------

    def poll(self, in_flight: list[InFlight], report: CycleReport) -> list[InFlight]:
        """One look at the chain; finalize what it decided, return what is still pending."""
        results = self.chain.confirmations(
            [(item.signature, item.last_valid_block_height) for item in in_flight]
        )
        pending, minted = [], []
        for item, result in zip(in_flight, results, strict=True):
            if result.state is ConfirmationState.PENDING:
                pending.append(item)
            elif (
                item.kind == OperationKind.MINT.value
                and result.state is ConfirmationState.CONFIRMED
            ):
                minted.append((item, result))
            else:
                self.finalize(item, result, report)
        if minted:
            self._confirm_mints(minted, report)
        return pending

    def _confirm_mints(
        self, landed: Sequence[tuple[InFlight, Confirmation]], report: CycleReport
    ) -> None:
        """Every mint this poll saw land, settled in one database transaction."""
        with self.sessions() as session:
            moved = states.mark_confirmed_many(
                session,
                [
                    (item.batch_id, result.status.slot if result.status else None)
                    for item, result in landed
                ],
                now=self.clock(),
            )
        for item, _ in landed:
            if item.batch_id in moved:
                self.settled.append(item.batch_id)
                report.confirmed += 1

    def settle(self, in_flight: list[InFlight], report: CycleReport) -> list[InFlight]:
        """Poll until every item is decided (or we stop or time out); returns the undecided."""
        waiting = list(in_flight)
        started = last_broadcast = time.monotonic()
        while waiting:
            waiting = self.poll(waiting, report)
            if not waiting:
                break
            if self.stop.is_set() or time.monotonic() - started > self.settle_timeout:
                report.unresolved += len(waiting)  # recovery settles them later
                break
            if time.monotonic() - last_broadcast >= self.rebroadcast_interval:
                self.broadcast(waiting)
                last_broadcast = time.monotonic()
            self.pause()
        return waiting

    def finalize(self, item: InFlight, result: Confirmation, report: CycleReport) -> None:
        now = self.clock()
        slot = result.status.slot if result.status else None
        with self.sessions() as session:
            if item.kind != OperationKind.MINT.value:
                if result.state is ConfirmationState.EXPIRED:
                    moved = states.mark_expired(session, item.batch_id, now=now)
                else:
                    error = result.status.error if result.status else None
                    moved = states.mark_operation_settled(
                        session, item.batch_id, result.state, slot=slot, error=error, now=now
                    )
            elif result.state is ConfirmationState.CONFIRMED:
                moved = states.mark_confirmed(session, item.batch_id, slot=slot, now=now)
            elif result.state is ConfirmationState.FAILED:
                error = (result.status.error if result.status else None) or "failed on chain"
                moved = states.mark_failed(
                    session, item.batch_id, error=error, config=self.config(), now=now
                )
            else:
                moved = states.mark_expired(session, item.batch_id, now=now)
        if not moved:
            return
        if result.state is not ConfirmationState.EXPIRED:
            self.settled.append(item.batch_id)  # it landed: it paid a fee
        if item.kind != OperationKind.MINT.value:
            report.operations_settled += 1
        elif result.state is ConfirmationState.CONFIRMED:
            report.confirmed += 1
        elif result.state is ConfirmationState.FAILED:
            report.failed += 1
        else:
            report.expired += 1

    def take_settled(self) -> list[int]:
        settled, self.settled = self.settled, []
        return settled
