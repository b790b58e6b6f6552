"""Reading queries for users, and the admin's mint-from-reading. Thin over core."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import AdminUser, CurrentUser, ProsumerUser, ReadSessionDep, SessionDep, StaffUser
from api.openapi import error_responses
from api.schemas import (
    MAX_ID,
    MintFromReadingIn,
    MintQueuedOut,
    MintStatusOut,
    ReadingPage,
    StatsOut,
)
from api.serialize import mint_status_out, reading_out
from core.db.models import ReadingStatus, Role
from core.minting.requests import request_reading_mint
from core.readings.queries import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    Page,
    list_unminted,
    list_user_readings,
    reading_for_user,
    reading_stats,
)
from core.units import format_kwh

router = APIRouter(tags=["readings"])

StatusQuery = Annotated[
    ReadingStatus | None,
    Query(description="pending, review, minting, minted, failed or rejected"),
]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based")]
PageSizeQuery = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
ReadingId = Annotated[int, Path(ge=1, le=MAX_ID, description="a reading id")]


def _page_out(page: Page) -> dict:
    return {
        "readings": [reading_out(view) for view in page.items],
        "total": page.total,
        "page": page.page,
        "page_size": page.page_size,
    }


@router.get(
    "/api/meters/my-readings",
    response_model=ReadingPage,
    summary="The prosumer's own readings, newest first",
    responses=error_responses("unauthenticated", "forbidden", "invalid_format"),
)
def my_readings(
    user: ProsumerUser,
    session: ReadSessionDep,
    status: StatusQuery = None,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> JSONResponse:
    result = list_user_readings(session, user.id, status=status, page=page, page_size=page_size)
    return JSONResponse(_page_out(result))


@router.get(
    "/api/meters/minting-status/{reading_id}",
    response_model=MintStatusOut,
    summary="A reading's mint status (its owner or staff)",
    description="A prosumer asking for another prosumer's reading gets 404 (as if missing).",
    responses=error_responses("unauthenticated", "not_found"),
)
def minting_status(
    reading_id: ReadingId, user: CurrentUser, session: ReadSessionDep
) -> JSONResponse:
    return JSONResponse(mint_status_out(reading_for_user(session, reading_id, user)))


@router.get(
    "/api/meters/stats",
    response_model=StatsOut,
    summary="Totals: own for a prosumer, everything for staff",
    description=(
        "Totals count every reading that is not rejected; minted + unminted = total. "
        "kWh are exact decimal strings, tokens_minted is GRX base units."
    ),
    responses=error_responses("unauthenticated"),
)
def stats(user: CurrentUser, session: ReadSessionDep) -> StatsOut:
    own = user.role == Role.PROSUMER
    totals = reading_stats(session, user.id if own else None)
    return StatsOut(
        scope="own" if own else "all",
        total_readings=totals.total_readings,
        total_kwh=format_kwh(totals.total_kwh_micro, micro=True),
        minted_kwh=format_kwh(totals.minted_kwh_micro, micro=True),
        unminted_kwh=format_kwh(totals.unminted_kwh_micro, micro=True),
        tokens_minted=totals.tokens_minted,
        readings_by_status=totals.by_status,
    )


@router.get(
    "/api/admin/meters/unminted",
    response_model=ReadingPage,
    summary="Readings not minted yet (pending, review, minting, failed), oldest first",
    responses=error_responses("unauthenticated", "forbidden", "invalid_format"),
)
def unminted(
    _staff: StaffUser,
    session: ReadSessionDep,
    status: StatusQuery = None,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 50,
) -> JSONResponse:
    result = list_unminted(session, status=status, page=page, page_size=page_size)
    return JSONResponse(_page_out(result))


@router.post(
    "/api/admin/meters/mint-from-reading",
    status_code=202,
    response_model=MintQueuedOut,
    summary="Queue one reading for minting now (even in review or with auto-mint off)",
    description="The scheduler mints it with its next cycle. 409 when minting or minted.",
    responses=error_responses(
        "unauthenticated", "forbidden", "not_found", "already_minted", "conflict"
    ),
)
def mint_from_reading(
    body: MintFromReadingIn, admin: AdminUser, session: SessionDep
) -> MintQueuedOut:
    reading = request_reading_mint(session, body.reading_id, admin)
    return MintQueuedOut(reading_id=reading.id, reading_status=reading.status)
