"""What admins ask of the minter: mint this reading, mint everything now, retry failures.

These only write rows (and their events); the scheduler acts on them. They are the
same for the API and the dashboard, and none of them can mint a reading twice:
a reading that is minting or minted is refused here, and the pipeline claims a
reading only while it is pending.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.db.models import MeterReading, MintRequest, ReadingStatus, User
from core.db.types import utcnow
from core.errors import Conflict, NotFound
from core.events import EventType, publish
from core.permissions import require_admin


class AlreadyMinted(Conflict):
    code = "already_minted"


def request_reading_mint(session: Session, reading_id: int, actor: User) -> MeterReading:
    """Queue one reading for minting now, even while auto-mint is off. Commits.

    From review this is the admin's force-mint; from failed it is a retry.
    """
    require_admin(actor, "queue a reading for minting")
    reading = session.get(MeterReading, reading_id, with_for_update=True)
    if reading is None:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    if reading.status in (ReadingStatus.MINTING, ReadingStatus.MINTED):
        raise AlreadyMinted(f"reading {reading_id} is already {reading.status}", field="reading_id")
    if reading.status == ReadingStatus.REJECTED:
        raise Conflict(f"reading {reading_id} was rejected in review", field="reading_id")
    previous = reading.status
    now = utcnow()
    reading.status = ReadingStatus.PENDING.value
    reading.mint_requested_at, reading.mint_requested_by = now, actor.id
    reading.next_attempt_at = None
    if previous == ReadingStatus.FAILED:
        reading.attempts, reading.last_error = 0, None
    if previous == ReadingStatus.REVIEW:
        reading.reviewed_by = actor.id
    publish(
        session,
        EventType.MINT_REQUESTED,
        {"reading_ids": [reading.id], "from_status": previous, "by": actor.username},
    )
    session.commit()
    return reading


def request_mint_now(session: Session, actor: User) -> MintRequest:
    """ "Mint now": every reading pending at this moment is minted, auto-mint on or off."""
    require_admin(actor, "mint now")
    upto = session.scalar(select(func.max(MeterReading.id))) or 0
    request = MintRequest(requested_by=actor.id, upto_reading_id=upto, created_at=utcnow())
    session.add(request)
    publish(
        session,
        EventType.MINT_REQUESTED,
        {"upto_reading_id": upto, "by": actor.username},
    )
    session.commit()
    return request


def retry_failed_readings(
    session: Session, actor: User, reading_ids: Sequence[int] | None = None
) -> int:
    """Failed readings back to pending with a fresh retry budget; returns how many. Commits."""
    require_admin(actor, "retry failed readings")
    statement = (
        update(MeterReading)
        .where(MeterReading.status == ReadingStatus.FAILED.value)
        .values(
            status=ReadingStatus.PENDING.value,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            mint_requested_at=utcnow(),
            mint_requested_by=actor.id,
        )
        .returning(MeterReading.id)
    )
    if reading_ids is not None:
        statement = statement.where(MeterReading.id.in_(list(reading_ids)))
    retried = list(session.scalars(statement))
    if retried:
        publish(
            session,
            EventType.MINT_REQUESTED,
            {"reading_ids": sorted(retried), "from_status": "failed", "by": actor.username},
        )
    session.commit()
    return len(retried)
