"""What holders and admins do with certificates: transfer (whole or a Wh range), retire
(claim), cancel, approve or reject one in review, and cancel a faulty meter's period.

Each use case takes a Session and the acting User, checks who may act (a
prosumer acts on certificates they hold; cancelling, approving and rejecting
are an admin's), moves the certificate with an UPDATE guarded on its status and
holder (two requests never both win), and commits. The chain move itself is
planned by the scheduler's certificate cycle (core.certificates.moves): a
request only changes rows.

Splitting: acting on part of a certificate (`first_id..last_id` inside its
range) replaces it by children that hold every id it held, exactly once: the
part acted on, and the parts before and after it, which stay active with the
same holder. The parent becomes `split`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.certificates.moves import MAX_ISSUE_ATTEMPTS
from core.db.models import (
    Certificate,
    CertificateBundle,
    CertificateStatus,
    Meter,
    Role,
    User,
)
from core.device_attributes import parse_country
from core.errors import Conflict, DomainError, Forbidden, NotFound
from core.text import is_clean_text


class InvalidCertificateRequest(DomainError):
    code = "invalid_format"


class CertificateConflict(Conflict):
    code = "certificate_not_active"


@dataclass(frozen=True)
class Claim:
    beneficiary: str
    purpose: str
    period_start: date
    period_end: date
    country: str


@dataclass(frozen=True)
class PeriodCancellation:
    cancelled: list[int]  # certificates now cancelling (burned by the next cycle)
    rejected: list[int]  # in review: never minted, now rejected
    retired: list[int]  # already claimed: listed for follow-up, not touched
    in_flight: list[int]  # issuing or moving: cancel them once they settle


def visible_to(viewer: User, certificate: Certificate) -> bool:
    return viewer.role != Role.PROSUMER.value or certificate.holder_id == viewer.id


def get_certificate(session: Session, certificate_id: int, viewer: User) -> Certificate:
    """The certificate if `viewer` may see it; NotFound otherwise (no existence leak)."""
    certificate = session.get(Certificate, certificate_id)
    if certificate is None or not visible_to(viewer, certificate):
        raise NotFound(f"no certificate {certificate_id}", field="certificate_id")
    return certificate


def _text(value: str, field: str, max_length: int = 200) -> str:
    if not is_clean_text(value, max_length=max_length) or not value.strip():
        raise InvalidCertificateRequest(
            f"{field} is 1-{max_length} characters of plain text", field=field
        )
    return value.strip()


def parse_claim(values: dict[str, Any]) -> Claim:
    """Beneficiary, purpose, consumption period (dates) and country of a retirement."""

    def day(name: str) -> date:
        value = values.get(name)
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value or "").strip())
        except ValueError as exc:
            raise InvalidCertificateRequest(f"{name} must be YYYY-MM-DD", field=name) from exc

    start, end = day("period_start"), day("period_end")
    if end < start:
        raise InvalidCertificateRequest("period_end is before period_start", field="period_end")
    country = parse_country(values.get("country"))
    if country is None:
        raise InvalidCertificateRequest("country is required", field="country")
    return Claim(
        _text(str(values.get("beneficiary") or ""), "beneficiary"),
        _text(str(values.get("purpose") or ""), "purpose"),
        start,
        end,
        country,
    )


def _range(certificate: Certificate, first_id: int | None, last_id: int | None) -> tuple[int, int]:
    first = certificate.first_id if first_id is None else first_id
    last = certificate.last_id if last_id is None else last_id
    if not certificate.first_id <= first <= last <= certificate.last_id:
        raise InvalidCertificateRequest(
            f"the range {first}-{last} is not within the certificate's "
            f"{certificate.first_id}-{certificate.last_id}",
            field="first_id",
        )
    return first, last


def _child(parent: Certificate, first: int, last: int, now: datetime, **values: Any) -> Certificate:
    return Certificate(
        bundle_id=parent.bundle_id,
        parent_id=parent.id,
        first_id=first,
        last_id=last,
        wh=last - first + 1,
        holder_id=parent.holder_id,
        holder_wallet=parent.holder_wallet,
        issue_signature=parent.issue_signature,
        status=CertificateStatus.ACTIVE.value,
        attempts=0,
        created_at=now,
        updated_at=now,
        **values,
    )


def _take(
    session: Session,
    certificate_id: int,
    actor: User,
    first_id: int | None,
    last_id: int | None,
    *,
    now: datetime,
    status: CertificateStatus,
    **values: Any,
) -> Certificate:
    """Move (part of) an active certificate held by `actor` to `status`. Commits."""
    certificate = get_certificate(session, certificate_id, actor)
    if certificate.holder_id != actor.id:
        raise Forbidden("only the holder may do this", field="certificate_id")
    first, last = _range(certificate, first_id, last_id)
    whole = (first, last) == (certificate.first_id, certificate.last_id)
    target = status if whole else CertificateStatus.SPLIT
    moved = session.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate.id,
            Certificate.status == CertificateStatus.ACTIVE.value,
            Certificate.holder_id == actor.id,
        )
        .values(
            status=target.value,
            updated_at=now,
            actor_id=actor.id,
            **({"operation_id": None, **values} if whole else {}),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.rollback()
        raise CertificateConflict(
            f"certificate {certificate_id} is {certificate.status}, not active",
            field="certificate_id",
        )
    if whole:
        session.commit()
        session.refresh(certificate)
        return certificate
    acted = _child(certificate, first, last, now, actor_id=actor.id, **values)
    acted.status = status.value
    parts = [acted]
    if first > certificate.first_id:
        parts.append(_child(certificate, certificate.first_id, first - 1, now))
    if last < certificate.last_id:
        parts.append(_child(certificate, last + 1, certificate.last_id, now))
    session.add_all(parts)
    session.commit()
    return acted


def _recipient(session: Session, username: str, sender: User) -> User:
    recipient = None
    if is_clean_text(username, max_length=64):
        recipient = session.scalar(select(User).where(User.username == username.strip()))
    if recipient is None:
        raise NotFound(f"no user named {username!r}", field="to_username")
    if recipient.role != Role.PROSUMER.value or not recipient.wallet_address or recipient.disabled:
        raise InvalidCertificateRequest(
            f"{recipient.username!r} is not an enabled prosumer with a wallet", field="to_username"
        )
    if recipient.id == sender.id:
        raise InvalidCertificateRequest("you already hold it", field="to_username")
    return recipient


def transfer_certificate(
    session: Session,
    certificate_id: int,
    to_username: str,
    actor: User,
    *,
    now: datetime,
    first_id: int | None = None,
    last_id: int | None = None,
) -> Certificate:
    """Give (a Wh range of) a certificate to another prosumer. Commits."""
    get_certificate(session, certificate_id, actor)  # not visible: not found, before all else
    recipient = _recipient(session, to_username, actor)
    return _take(
        session,
        certificate_id,
        actor,
        first_id,
        last_id,
        now=now,
        status=CertificateStatus.TRANSFERRING,
        pending_holder_id=recipient.id,
        pending_wallet=recipient.wallet_address,
    )


def retire_certificate(
    session: Session,
    certificate_id: int,
    claim: Claim,
    actor: User,
    *,
    now: datetime,
    first_id: int | None = None,
    last_id: int | None = None,
) -> Certificate:
    """Claim (a Wh range of) a certificate for a beneficiary; it is burned on chain. Commits."""
    return _take(
        session,
        certificate_id,
        actor,
        first_id,
        last_id,
        now=now,
        status=CertificateStatus.RETIRING,
        beneficiary=claim.beneficiary,
        purpose=claim.purpose,
        period_start=claim.period_start,
        period_end=claim.period_end,
        claim_country=claim.country,
    )


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN.value:
        raise Forbidden("an admin's decision", field="certificate_id")


def _admin_move(
    session: Session,
    certificate_id: int,
    actor: User,
    source: CertificateStatus,
    target: CertificateStatus,
    *,
    now: datetime,
    **values: Any,
) -> Certificate:
    _require_admin(actor)
    certificate = get_certificate(session, certificate_id, actor)
    moved = session.execute(
        update(Certificate)
        .where(Certificate.id == certificate_id, Certificate.status == source.value)
        .values(status=target.value, updated_at=now, actor_id=actor.id, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.rollback()
        raise CertificateConflict(
            f"certificate {certificate_id} is {certificate.status}, not {source.value}",
            field="certificate_id",
        )
    session.commit()
    session.refresh(certificate)
    return certificate


def cancel_certificate(
    session: Session, certificate_id: int, reason: str, actor: User, *, now: datetime
) -> Certificate:
    """An admin withdraws an active certificate (burned), or rejects one in review. Commits."""
    reason = _text(reason, "reason", 500)
    certificate = get_certificate(session, certificate_id, actor)
    if certificate.status == CertificateStatus.REVIEW.value:
        return _admin_move(
            session,
            certificate_id,
            actor,
            CertificateStatus.REVIEW,
            CertificateStatus.REJECTED,
            now=now,
            cancel_reason=reason,
            finished_at=now,
        )
    return _admin_move(
        session,
        certificate_id,
        actor,
        CertificateStatus.ACTIVE,
        CertificateStatus.CANCELLING,
        now=now,
        cancel_reason=reason,
        operation_id=None,
    )


def approve_certificate(
    session: Session, certificate_id: int, actor: User, *, now: datetime
) -> Certificate:
    """An admin approves a certificate waiting in review, or one whose issue failed on chain
    every attempt (after fixing the cause): it is minted next cycle. Commits."""
    _require_admin(actor)
    stuck = get_certificate(session, certificate_id, actor)
    if stuck.status == CertificateStatus.ISSUING.value and stuck.attempts >= MAX_ISSUE_ATTEMPTS:
        moved = session.execute(
            update(Certificate)
            .where(
                Certificate.id == certificate_id,
                Certificate.status == CertificateStatus.ISSUING.value,
                Certificate.attempts >= MAX_ISSUE_ATTEMPTS,
            )
            .values(attempts=0, updated_at=now, actor_id=actor.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if moved != 1:
            raise CertificateConflict(
                f"certificate {certificate_id} changed meanwhile", field="certificate_id"
            )
        session.refresh(stuck)
        return stuck
    certificate = _admin_move(
        session,
        certificate_id,
        actor,
        CertificateStatus.REVIEW,
        CertificateStatus.ISSUING,
        now=now,
    )
    session.execute(
        update(CertificateBundle)
        .where(CertificateBundle.id == certificate.bundle_id)
        .values(approved_by=actor.id)
    )
    session.commit()
    return certificate


def cancel_meter_period(
    session: Session,
    serial: str,
    start: datetime,
    end: datetime,
    reason: str,
    actor: User,
    *,
    now: datetime,
) -> PeriodCancellation:
    """A faulty meter: cancel its unretired certificates of hours in [start, end). Commits."""
    _require_admin(actor)
    reason = _text(reason, "reason", 500)
    if end <= start:
        raise InvalidCertificateRequest("end must be after start", field="end")
    meter_id = session.scalar(select(Meter.id).where(Meter.serial == serial))
    if meter_id is None:
        raise NotFound(f"no meter with serial {serial!r}", field="serial")
    rows = session.execute(
        select(Certificate.id, Certificate.status)
        .join(CertificateBundle, CertificateBundle.id == Certificate.bundle_id)
        .where(
            CertificateBundle.meter_id == meter_id,
            CertificateBundle.hour_start >= start,
            CertificateBundle.hour_start < end,
        )
        .order_by(Certificate.id)
    ).all()
    session.rollback()
    result = PeriodCancellation([], [], [], [])
    for certificate_id, status in rows:
        if status in (CertificateStatus.ACTIVE.value, CertificateStatus.REVIEW.value):
            try:
                done = cancel_certificate(session, certificate_id, reason, actor, now=now)
            except CertificateConflict:  # it moved meanwhile
                result.in_flight.append(certificate_id)
                continue
            bucket = result.rejected if done.status == "rejected" else result.cancelled
            bucket.append(certificate_id)
        elif status in (CertificateStatus.RETIRED.value, CertificateStatus.RETIRING.value):
            result.retired.append(certificate_id)
        elif status not in (
            CertificateStatus.SPLIT.value,
            CertificateStatus.CANCELLED.value,
            CertificateStatus.CANCELLING.value,
            CertificateStatus.REJECTED.value,
        ):
            result.in_flight.append(certificate_id)
    return result
