"""`GET /api/exports/{table}`: every table as CSV with the dashboard's filters (beyond
the contract). The listing endpoints answer CSV too, with `?format=csv`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator
from starlette.responses import StreamingResponse

from api.csv_response import NotAcceptable, csv_response, wants_csv
from api.deps import CurrentUser, StateDep
from api.openapi import error_responses
from core.exports.tables import TABLES
from core.text import text_problem
from core.views.filters import TableFilter

router = APIRouter(tags=["exports"])

TableName = Literal["readings", "mints", "events", "meters", "users", "certificates"]
assert set(TableName.__args__) == set(TABLES)  # type: ignore[attr-defined]


def _clean_text(value: str) -> str:
    """Checked before the answer starts streaming: a NUL would fail mid-CSV on PostgreSQL."""
    problem = text_problem(value, max_length=200)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, Query(max_length=200), AfterValidator(_clean_text)]


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is UTC, as everywhere in this API."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "/api/exports/{table}",
    summary="A table as CSV, filtered, newest first, streamed (beyond the contract)",
    description=(
        "readings: since/until (reading time), meter, user, status; mints: since/until "
        "(created), status; events: since/until, types (comma separated), text, meter, user; "
        "meters: status, meter, user (owner); users (admins): role; certificates: "
        "since/until (production hour), meter, user (holder), status, technology, region. "
        "A prosumer gets only their own readings, events and certificates; mints and meters "
        "are for staff. Answers CSV "
        "(Accept: text/csv or format=csv); other formats get 406."
    ),
    responses={
        **error_responses(
            "unauthenticated", "forbidden", "invalid_format", "invalid_filter", "not_acceptable"
        ),
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "the rows as CSV",
        },
    },
)
async def export(
    request: Request,
    table: Annotated[TableName, Path(description="the table")],
    user: CurrentUser,
    state: StateDep,
    since: datetime | None = None,
    until: datetime | None = None,
    meter: Text = "",
    status: Text = "",
    types: Text = "",
    text: Text = "",
    role: Text = "",
    technology: Text = "",
    region: Text = "",
    user_filter: Annotated[
        str, Query(alias="user", max_length=200), AfterValidator(_clean_text)
    ] = "",
    format: Literal["csv"] | None = None,
) -> StreamingResponse:
    if format is None and "accept" in request.headers and not wants_csv(request, None):
        accept = request.headers["accept"]
        if "*/*" not in accept and "text/*" not in accept:
            raise NotAcceptable(f"only text/csv is offered here, not {accept!r}", field="accept")
    flt = TableFilter(
        since=_utc(since),
        until=_utc(until),
        meter=meter.strip(),
        user=user_filter.strip(),
        status=status.strip(),
        types=tuple(part.strip() for part in types.split(",") if part.strip()),
        text=text.strip(),
        role=role.strip(),
        technology=technology.strip(),
        region=region.strip(),
    )
    return await csv_response(state.core, table, user, flt)
