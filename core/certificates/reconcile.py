"""Certificate supply reconciliation: on chain == bootstrap + issued - retired - cancelled.

Unlike GRX, the certificate supply also falls (burns), so bounds are built from
four sums over certificate operations, each of which only grows:

    issued_landed  (issue confirmed)     issued_sent  (issue signed or confirmed)
    burned_landed  (retire/cancel confirmed)   burned_sent (retire/cancel signed or confirmed)

Read the landed sums, then the chain, then the sent sums: whatever moved in
between, the true supply lies in
[issued_landed - burned_sent, issued_sent - burned_landed] (+ bootstrap).
Transfers burn and mint the same Wh in one transaction: supply-neutral. A value
outside is a `reconcile_mismatch` event (kind `certificates`), never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import BatchStatus, CertificateMint, MintBatch, OperationKind
from core.events import EventType, publish

log = logging.getLogger(__name__)

ISSUES = (OperationKind.CERTIFICATE_ISSUE.value,)
BURNS = (OperationKind.CERTIFICATE_RETIRE.value, OperationKind.CERTIFICATE_CANCEL.value)
LANDED = (BatchStatus.CONFIRMED.value,)
SENT = (BatchStatus.SIGNED.value, BatchStatus.CONFIRMED.value)


@dataclass(frozen=True)
class CertificateReconciliation:
    onchain_supply: int
    lower: int
    upper: int

    @property
    def ok(self) -> bool:
        return self.lower <= self.onchain_supply <= self.upper


def _wh(session: Session, kinds: tuple[str, ...], statuses: tuple[str, ...]) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(MintBatch.total_base_units), 0)).where(
                MintBatch.kind.in_(kinds), MintBatch.status.in_(statuses)
            )
        )
    )


def check_certificate_supply(
    sessions: sessionmaker[Session], mint_address: str, read_supply: Callable[[], int]
) -> CertificateReconciliation:
    with sessions() as session:
        bootstrap = int(
            session.scalar(
                select(CertificateMint.bootstrap_supply).where(
                    CertificateMint.address == mint_address
                )
            )
            or 0
        )
        issued_landed, burned_landed = _wh(session, ISSUES, LANDED), _wh(session, BURNS, LANDED)
    supply = read_supply()
    with sessions() as session:
        issued_sent, burned_sent = _wh(session, ISSUES, SENT), _wh(session, BURNS, SENT)
    return CertificateReconciliation(
        supply,
        bootstrap + issued_landed - burned_sent,
        bootstrap + issued_sent - burned_landed,
    )


def reconcile_certificates(
    sessions: sessionmaker[Session], mint_address: str, read_supply: Callable[[], int]
) -> CertificateReconciliation:
    """Check the certificate supply; a mismatch is logged and written as an event."""
    result = check_certificate_supply(sessions, mint_address, read_supply)
    if result.ok:
        return result
    log.error(
        "CERTIFICATE RECONCILE MISMATCH on %s: on-chain supply %d, expected %d..%d",
        mint_address,
        result.onchain_supply,
        result.lower,
        result.upper,
    )
    with sessions() as session:
        publish(
            session,
            EventType.RECONCILE_MISMATCH,
            {
                "kind": "certificates",
                "mint": mint_address,
                "onchain_supply": result.onchain_supply,
                "expected_supply": result.lower,
                "expected_with_in_flight": result.upper,
            },
        )
        session.commit()
    return result
