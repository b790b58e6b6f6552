"""CSV as a representation of the listing endpoints: `?format=csv` or `Accept: text/csv`.

The rows come from core.exports (the dashboard's downloads use the same tables and
filters), streamed in keyset pages: the response starts at once and memory stays one
page deep however many rows match.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from core.bootstrap import App
from core.db.models import User
from core.errors import DomainError
from core.exports.csv_stream import check_access, stream_csv
from core.exports.tables import export_table
from core.views.filters import TableFilter

CSV = "text/csv"
# OpenAPI: the 200 answer may also be CSV (a header row, then one row per item).
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "OK"}
}


class NotAcceptable(DomainError):
    code = "not_acceptable"


def wants_csv(request: Request, format: str | None) -> bool:
    """`format` wins; otherwise the Accept header (a browser's */* keeps JSON)."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == CSV for part in accept.split(","))


async def csv_response(
    core: App, table_name: str, user: User, flt: TableFilter
) -> StreamingResponse:
    return await run_in_threadpool(csv_stream_response, core, table_name, user, flt)


def csv_stream_response(
    core: App, table_name: str, user: User, flt: TableFilter
) -> StreamingResponse:
    """For a sync route (it reads the database; call it from a worker thread)."""
    table = export_table(table_name)
    # Access and filter errors are answered before the first byte, as a normal error body.
    check_access(core.engine, table, user.id, flt)
    name = f"{table.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        stream_csv(core.engine, table, user.id, flt),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
