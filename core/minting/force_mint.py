"""Force-mint: queue one reading now, and say so when it was already queued.

Force-mint is core.minting.requests.request_reading_mint, which refuses a reading
that is minting or minted. A reading an admin already queued is still pending, and
re-queuing it would succeed silently; a second click must say it was already done.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.db.models import MeterReading, ReadingStatus, User
from core.errors import Conflict, NotFound
from core.minting.requests import request_reading_mint
from core.permissions import require_admin


class AlreadyQueued(Conflict):
    code = "already_queued"


def force_mint_reading(session: Session, reading_id: int, actor: User) -> MeterReading:
    """Queue a reading for minting now (from review or failed); never twice. Commits."""
    require_admin(actor, "force-mint a reading")
    reading = session.get(MeterReading, reading_id, with_for_update=True)
    if reading is None:
        raise NotFound(f"reading {reading_id} does not exist", field="reading_id")
    if reading.status == ReadingStatus.PENDING and reading.mint_requested_at is not None:
        session.rollback()
        raise AlreadyQueued(
            f"reading {reading_id} is already queued for minting "
            f"(requested {reading.mint_requested_at:%Y-%m-%d %H:%M:%S} UTC)",
            field="reading_id",
        )
    return request_reading_mint(session, reading_id, actor)
