"""The review queue: readings above the review threshold wait here for an admin."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.db.models import MeterReading, ReadingStatus, User
from core.errors import Conflict, InvalidInput, NotFound
from core.events import EventType, publish
from core.permissions import require_admin


def _in_review(session: Session, reading_id: int) -> MeterReading:
    reading = session.get(MeterReading, reading_id, with_for_update=True)
    if reading is None:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    if reading.status != ReadingStatus.REVIEW:
        raise Conflict(f"reading {reading_id} is {reading.status}, not in review")
    return reading


def approve_reading(session: Session, reading_id: int, actor: User, note: str = "") -> MeterReading:
    """Release a reading to the minter (it mints with the next cycle). Commits."""
    require_admin(actor, "approve a reading")
    reading = _in_review(session, reading_id)
    reading.status = ReadingStatus.PENDING.value
    reading.reviewed_by, reading.review_note = actor.id, note.strip() or None
    _reviewed(session, reading, "approved", actor, note)
    session.commit()
    return reading


def reject_reading(session: Session, reading_id: int, actor: User, reason: str) -> MeterReading:
    """Reject a reading for good; the reason is required and kept. Commits."""
    require_admin(actor, "reject a reading")
    if not reason.strip():
        raise InvalidInput("a reason is required to reject a reading", field="reason")
    reading = _in_review(session, reading_id)
    reading.status = ReadingStatus.REJECTED.value
    reading.reviewed_by, reading.review_note = actor.id, reason.strip()
    _reviewed(session, reading, "rejected", actor, reason)
    session.commit()
    return reading


def _reviewed(
    session: Session, reading: MeterReading, decision: str, actor: User, note: str
) -> None:
    publish(
        session,
        EventType.READING_REVIEWED,
        {
            "reading_id": reading.id,
            "decision": decision,
            "note": note.strip(),
            "by": actor.username,
        },
        user_id=reading.user_id,
    )
