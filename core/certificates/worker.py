"""The certificate cycle: issue due bundles, then move certificates on chain through the outbox.

One cycle: (1) issue the closed hours' bundles (core.certificates.issuance);
(2) settle what earlier cycles left in flight and apply the chain's outcomes;
(3) plan the due moves into the outbox, sign them in one call per signer,
persist the signed bytes, send, settle and apply. The signing, persisting,
sending and settling are core.minting.outbox's, the same code GRX mints go
through: a move's bytes are committed before they are sent, only those bytes
are resent, and the outcome is read from the chain.

Any exception aborts the cycle; what was persisted stays and the next cycle
(or the mint pipeline's recovery, which settles every kind of operation)
resumes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from solders.signature import Signature
from sqlalchemy.orm import Session, sessionmaker

from core.certificates.issuance import IssueReport, issue_due
from core.certificates.moves import PlannedMove, apply_outcomes, build_move, due_moves, plan_move
from core.chain.certificate_mint import CertificateMint
from core.chain.client import ChainClient
from core.chain.mint_setup import ensure_sol_balance
from core.chain.signature_watch import SignatureWatch
from core.chain.signer import Signer
from core.chain.transactions import build_transaction
from core.config import TokenizationConfig
from core.db.models import CERTIFICATE_KINDS, BatchStatus
from core.db.types import utcnow
from core.minting import costs, states
from core.minting.outbox import CycleReport, InFlight, Outbox

log = logging.getLogger(__name__)

STALE_PLANNED = timedelta(seconds=30)  # as the mint pipeline: a planner that stopped
FEE_PER_MOVE = 10_000  # lamports: fee payer and authority signatures


@dataclass
class CertificateReport:
    issued: IssueReport = field(default_factory=IssueReport)
    planned: int = 0
    applied: int = 0
    chain: CycleReport = field(default_factory=CycleReport)


class CertificateWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainClient,
        signers: Sequence[Signer],
        config: Callable[[], TokenizationConfig],
        mint: CertificateMint,
        *,
        auto_issue: Callable[[], bool],
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        airdrop: bool = False,
        max_moves: int = 50,
        poll_interval: float = 0.15,
        rebroadcast_interval: float = 2.0,
        settle_timeout: float = 60.0,
        watch: SignatureWatch | None = None,
    ) -> None:
        self.sessions = sessions
        self.chain = chain
        self.mint = mint
        self.auto_issue = auto_issue
        self.clock = clock
        self.airdrop = airdrop
        self.max_moves = max_moves
        self.outbox = Outbox(
            sessions,
            chain,
            signers,
            config,
            stop=stop or threading.Event(),
            clock=clock,
            poll_interval=poll_interval,
            rebroadcast_interval=rebroadcast_interval,
            settle_timeout=settle_timeout,
            watch=watch,
        )
        self.payer, self.authority = signers[0], signers[-1]  # fee payer first, as the outbox

    def run_cycle(self) -> CertificateReport:
        report = CertificateReport()
        with self.sessions() as session:
            report.issued = issue_due(session, now=self.clock(), auto_issue=self.auto_issue())
        self.recover(report.chain)
        with self.sessions() as session:
            report.applied += apply_outcomes(session, now=self.clock())
        moves = self._plan()
        report.planned = len(moves)
        if moves:
            in_flight = self._sign_and_send(moves)
            self.outbox.settle(in_flight, report.chain)
            with self.sessions() as session:
                report.applied += apply_outcomes(session, now=self.clock())
        self._record_costs()
        return report

    def recover(self, report: CycleReport) -> None:
        """Release certificate operations nobody signed; settle signed ones."""
        now = self.clock()
        with self.sessions() as session:
            rows = [b for b in states.open_batches(session) if b.kind in CERTIFICATE_KINDS]
        signed = []
        for row in rows:
            if row.status == BatchStatus.PLANNED.value:
                if now - row.created_at > STALE_PLANNED:
                    with self.sessions() as session:
                        states.release_planned(
                            session, row.id, reason="released: never signed", now=now
                        )
            elif row.signature and row.raw_tx and row.last_valid_block_height is not None:
                signed.append(
                    InFlight(
                        row.id,
                        Signature.from_string(row.signature),
                        bytes(row.raw_tx),
                        row.last_valid_block_height,
                        row.kind,
                    )
                )
        if signed:
            self.outbox.watch(signed)
            self.outbox.broadcast(signed)
            self.outbox.settle(signed, report)

    def _plan(self) -> list[PlannedMove]:
        with self.sessions() as session:
            due = due_moves(session, self.max_moves)
            session.rollback()
            planned = [plan_move(session, self.outbox, cid, now=self.clock()) for cid in due]
        return [move for move in planned if move is not None]

    def _sign_and_send(self, moves: list[PlannedMove]) -> list[InFlight]:
        try:
            ensure_sol_balance(
                self.chain, self.payer.pubkey, FEE_PER_MOVE * len(moves), airdrop=self.airdrop
            )
            blockhash, last_valid = self.chain.latest_blockhash()
            items = []
            for move in moves:
                instructions = build_move(
                    move,
                    mint=self.mint.address,
                    authority=self.authority.pubkey,
                    payer=self.payer.pubkey,
                )
                tx = build_transaction(instructions, self.payer.pubkey, blockhash)
                items.append((move.operation_id, tx, last_valid, move.kind))
            prepared = self.outbox.sign_all(items)
        except Exception:
            self._release(moves, reason="released: could not sign")
            raise
        in_flight = self.outbox.persist(prepared, blockhash)
        self.outbox.broadcast(in_flight)
        return in_flight

    def _release(self, moves: list[PlannedMove], *, reason: str) -> None:
        for move in moves:
            try:
                with self.sessions() as session:
                    states.release_planned(
                        session, move.operation_id, reason=reason, now=self.clock()
                    )
            except Exception:  # the database may be why; the stale-planned release catches it
                log.warning("could not release certificate operation %d", move.operation_id)

    def _record_costs(self) -> None:
        settled = self.outbox.take_settled()
        if settled:
            costs.record_costs(self.sessions, self.chain, settled, now=self.clock())
