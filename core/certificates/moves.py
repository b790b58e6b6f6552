"""A certificate's chain moves: planned into the outbox, built, and settled from its row.

    certificate          operation (mint_batches kind)        on confirm            on failure
    issuing       ->     certificate_issue    MintTo holder    active                retried (3x)
    transferring  ->     certificate_transfer burn + MintTo    active, new holder    active
    retiring      ->     certificate_retire   burn             retired               active
    cancelling    ->     certificate_cancel   burn             cancelled             active

Planning is one transaction per certificate: the outbox row is inserted and the
certificate points at it through an UPDATE guarded on the status and the
operation it pointed at before, so two schedulers never plan the same move
twice. A new operation is planned only when the previous one expired (it never
landed and can no longer land) or, for an issue, failed (it landed and did
nothing; applying that outcome counts the attempt once and clears the pointer,
and an issue out of attempts waits for an admin): the outbox makes each
operation land at most once, so each move lands at most once. Outcomes are read
from the operation's row (whoever settled it: this worker or the mint
pipeline's recovery) and applied with the same kind of guarded UPDATE, together
with the move's event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from core.certificates.rollup import add_daily
from core.chain.certificate_instructions import (
    CERTIFICATE_DECIMALS,
    BurnParams,
    burn_checked,
    issue_memo,
    lifecycle_memo,
)
from core.chain.instructions import (
    TOKEN_2022_PROGRAM_ID,
    CreateAtaParams,
    MintToParams,
    associated_token_address,
    create_associated_token_account_idempotent,
    memo,
    mint_to,
)
from core.db.models import (
    BatchStatus,
    Certificate,
    CertificateBundle,
    CertificateOperation,
    CertificateStatus,
    Meter,
    MintBatch,
    OperationKind,
)
from core.events import EventType, publish
from core.minting.outbox import Outbox

MAX_ISSUE_ATTEMPTS = 3

MOVING = {
    CertificateStatus.ISSUING.value: (OperationKind.CERTIFICATE_ISSUE, "issue"),
    CertificateStatus.TRANSFERRING.value: (OperationKind.CERTIFICATE_TRANSFER, "transfer"),
    CertificateStatus.RETIRING.value: (OperationKind.CERTIFICATE_RETIRE, "retire"),
    CertificateStatus.CANCELLING.value: (OperationKind.CERTIFICATE_CANCEL, "cancel"),
}
SETTLED_AS = {
    CertificateStatus.ISSUING.value: CertificateStatus.ACTIVE,
    CertificateStatus.TRANSFERRING.value: CertificateStatus.ACTIVE,
    CertificateStatus.RETIRING.value: CertificateStatus.RETIRED,
    CertificateStatus.CANCELLING.value: CertificateStatus.CANCELLED,
}
EVENT_OF = {
    CertificateStatus.ISSUING.value: EventType.CERTIFICATE_ISSUED,
    CertificateStatus.TRANSFERRING.value: EventType.CERTIFICATE_TRANSFERRED,
    CertificateStatus.RETIRING.value: EventType.CERTIFICATE_RETIRED,
    CertificateStatus.CANCELLING.value: EventType.CERTIFICATE_CANCELLED,
}


@dataclass(frozen=True)
class PlannedMove:
    operation_id: int
    kind: str
    payload: dict[str, Any]


def _payload(certificate: Certificate, bundle: CertificateBundle, action: str) -> dict[str, Any]:
    return {
        "certificate_id": certificate.id,
        "bundle_id": bundle.id,
        "action": action,
        "wh": certificate.wh,
        "first_id": certificate.first_id,
        "last_id": certificate.last_id,
        "holder_wallet": certificate.holder_wallet,
        "to_wallet": certificate.pending_wallet,
    }


def due_moves(session: Session, limit: int) -> list[int]:
    """Certificates whose move needs a (new) operation planned."""
    previous = MintBatch
    out_of_attempts = and_(
        Certificate.status == CertificateStatus.ISSUING.value,
        Certificate.attempts >= MAX_ISSUE_ATTEMPTS,
    )
    return list(
        session.scalars(
            select(Certificate.id)
            .outerjoin(previous, previous.id == Certificate.operation_id)
            .where(
                Certificate.status.in_(list(MOVING)),
                or_(
                    and_(Certificate.operation_id.is_(None), ~out_of_attempts),
                    previous.status == BatchStatus.EXPIRED.value,
                ),
            )
            .order_by(Certificate.id)
            .limit(limit)
        )
    )


def plan_move(
    session: Session, outbox: Outbox, certificate_id: int, *, now: datetime
) -> PlannedMove | None:
    """Plan the certificate's move into the outbox; None when someone else did. Commits."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or certificate.status not in MOVING:
        session.rollback()
        return None
    bundle = session.get(CertificateBundle, certificate.bundle_id)
    assert bundle is not None
    kind, action = MOVING[certificate.status]
    payload = _payload(certificate, bundle, action)
    seen = certificate.operation_id
    if seen is None and _out_of_attempts(certificate):
        session.rollback()  # its issue failed every attempt: an admin approves it again
        return None
    if seen is not None and not _may_replan(session, seen):
        session.rollback()  # its operation may still land (or already did)
        return None
    operation_id = outbox.plan(session, kind, payload, total_base_units=certificate.wh)
    guard = Certificate.operation_id.is_(None) if seen is None else Certificate.operation_id == seen
    moved = session.execute(
        update(Certificate)
        .where(Certificate.id == certificate_id, Certificate.status == certificate.status, guard)
        .values(operation_id=operation_id, updated_at=now)
    ).rowcount
    if moved != 1:
        session.rollback()
        return None
    session.execute(
        insert(CertificateOperation).values(
            certificate_id=certificate_id, operation_id=operation_id, action=action
        )
    )
    session.commit()
    return PlannedMove(operation_id, kind.value, payload)


def _out_of_attempts(certificate: Certificate) -> bool:
    return (
        certificate.status == CertificateStatus.ISSUING.value
        and certificate.attempts >= MAX_ISSUE_ATTEMPTS
    )


def _may_replan(session: Session, operation_id: int) -> bool:
    """Only an operation that can no longer land makes room for a new one (a failed issue's
    outcome already cleared the pointer: see apply_outcomes)."""
    status = session.scalar(select(MintBatch.status).where(MintBatch.id == operation_id))
    return status == BatchStatus.EXPIRED.value


def build_move(
    move: PlannedMove, *, mint: Pubkey, authority: Pubkey, payer: Pubkey
) -> list[Instruction]:
    """The instructions of a planned move, from its payload alone."""
    p = move.payload
    program = TOKEN_2022_PROGRAM_ID

    def account(wallet: str) -> Pubkey:
        return associated_token_address(Pubkey.from_string(wallet), mint, program)

    def create(wallet: str) -> Instruction:
        return create_associated_token_account_idempotent(
            CreateAtaParams(payer, Pubkey.from_string(wallet), mint, program)
        )

    def mint_wh(wallet: str) -> Instruction:
        params = MintToParams(
            program, mint, account(wallet), authority, p["wh"], CERTIFICATE_DECIMALS
        )
        return mint_to(params)

    def burn_wh(wallet: str) -> Instruction:
        return burn_checked(
            BurnParams(account(wallet), mint, authority, p["wh"], CERTIFICATE_DECIMALS)
        )

    holder = p["holder_wallet"]
    if move.kind == OperationKind.CERTIFICATE_ISSUE.value:
        text = issue_memo(p["bundle_id"], p["first_id"], p["last_id"])
        return [create(holder), mint_wh(holder), memo(text)]
    text = lifecycle_memo(p["action"], p["certificate_id"], p["first_id"], p["last_id"])
    if move.kind == OperationKind.CERTIFICATE_TRANSFER.value:
        return [create(p["to_wallet"]), burn_wh(holder), mint_wh(p["to_wallet"]), memo(text)]
    return [burn_wh(holder), memo(text)]


def apply_outcomes(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Apply what the chain decided for moving certificates; returns how many. Commits."""
    rows = session.execute(
        select(Certificate, MintBatch)
        .join(MintBatch, MintBatch.id == Certificate.operation_id)
        .where(
            Certificate.status.in_(list(MOVING)),
            MintBatch.status.in_([BatchStatus.CONFIRMED.value, BatchStatus.FAILED.value]),
        )
        .order_by(Certificate.id)
        .limit(limit)
    ).all()
    applied = 0
    for certificate, operation in rows:
        was = certificate.status
        parties = (certificate.holder_id, certificate.pending_holder_id)  # before the update
        if operation.status == BatchStatus.CONFIRMED.value:
            values: dict[str, Any] = {"status": SETTLED_AS[was].value, "last_error": None}
            if was == CertificateStatus.ISSUING.value:
                values["issue_signature"] = operation.signature
            if was == CertificateStatus.TRANSFERRING.value:
                values |= {
                    "holder_id": certificate.pending_holder_id,
                    "holder_wallet": certificate.pending_wallet,
                    "pending_holder_id": None,
                    "pending_wallet": None,
                }
            if was in (CertificateStatus.RETIRING.value, CertificateStatus.CANCELLING.value):
                values["finished_at"] = now
        else:
            values = {"attempts": certificate.attempts + 1, "last_error": operation.error}
            if was == CertificateStatus.ISSUING.value:
                # Free for a new attempt, and counted once: the pointer no longer names the
                # failed operation, so the next call does not count this failure again.
                values["operation_id"] = None
            else:  # nothing moved: the holder keeps it
                values |= {"status": CertificateStatus.ACTIVE.value}
                values |= {"pending_holder_id": None, "pending_wallet": None}
        moved = session.execute(
            update(Certificate)
            .where(
                Certificate.id == certificate.id,
                Certificate.status == was,
                Certificate.operation_id == operation.id,
            )
            .values(updated_at=now, **values)
        ).rowcount
        if moved != 1:
            continue
        applied += 1
        if operation.status == BatchStatus.CONFIRMED.value:
            _announce(session, certificate, operation, was, parties, now)
    session.commit()
    return applied


def _announce(
    session: Session,
    certificate: Certificate,
    operation: MintBatch,
    was: str,
    parties: tuple[int, int | None],
    now: datetime,
) -> None:
    bundle = session.get(CertificateBundle, certificate.bundle_id)
    assert bundle is not None
    serial = session.scalar(select(Meter.serial).where(Meter.id == bundle.meter_id))
    payload: dict[str, Any] = {
        "certificate_id": certificate.id,
        "bundle_id": bundle.id,
        "meter_serial": serial,
        "hour_start": bundle.hour_start.isoformat().replace("+00:00", "Z"),
        "wh": certificate.wh,
        "first_id": certificate.first_id,
        "last_id": certificate.last_id,
        "technology": bundle.technology,
        "grid_region": bundle.grid_region,
        "transaction_signature": operation.signature,
    }
    event = EVENT_OF[was]
    if was in (CertificateStatus.RETIRING.value, CertificateStatus.CANCELLING.value):
        ended = SETTLED_AS[was].value
        add_daily(
            session, [((now.date(), bundle.technology, bundle.grid_region, ended), certificate.wh)]
        )
    if was == CertificateStatus.TRANSFERRING.value:
        sender, recipient = parties
        payload |= {"from_user_id": sender, "to_user_id": recipient}
        for user_id in dict.fromkeys((sender, recipient)):  # each side sees it
            publish(session, event, {**payload, "user_id": user_id}, user_id=user_id, at=now)
        return
    payload["user_id"] = parties[0]
    if was == CertificateStatus.RETIRING.value:
        payload |= {
            "beneficiary": certificate.beneficiary,
            "purpose": certificate.purpose,
            "period_start": certificate.period_start and certificate.period_start.isoformat(),
            "period_end": certificate.period_end and certificate.period_end.isoformat(),
            "country": certificate.claim_country,
        }
    if was == CertificateStatus.CANCELLING.value:
        payload["reason"] = certificate.cancel_reason
    publish(session, event, payload, user_id=parties[0], at=now)
