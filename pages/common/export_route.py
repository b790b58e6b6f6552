"""`GET /export/{table}.csv?link=...`: the dashboard's CSV downloads, streamed.

st.download_button needs the whole file in memory (and in the session's media
store) before the user clicks; an export of a million readings would not fit. The
page instead shows a link signed for this user, table and filter
(core.exports.links), and this route, on the dashboard's own origin, streams the
CSV page by page from the database (core.exports.csv_stream).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.bootstrap import App, bootstrap
from core.config import load_settings
from core.errors import DomainError, Forbidden
from core.exports.csv_stream import check_access, stream_csv
from core.exports.links import ExportGrant, verify_link
from core.exports.tables import ExportTable, export_table

PATH = "/export/{table}.csv"


@functools.cache
def _app_for(fingerprint: str) -> App:
    return bootstrap(load_settings())


def _app() -> App:
    settings = load_settings()
    return _app_for(hashlib.sha256(repr(settings).encode()).hexdigest())


def _error(exc: DomainError, status: int) -> JSONResponse:
    body: dict[str, object] = {"code": exc.code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    return JSONResponse({"error": body}, status_code=status)


def export_url(table: str, link: str) -> str:
    return f"/export/{table}.csv?link={link}"


def _grant(table_name: str, link: str, now: datetime) -> tuple[App, ExportTable, ExportGrant]:
    app = _app()
    grant = verify_link(app.api_secret_key(), link, now)
    table = export_table(table_name)
    if grant.table != table.name:
        raise Forbidden("this link is for another table")
    check_access(app.engine, table, grant.user_id, grant.filter)
    return app, table, grant


async def export_csv(request: Request) -> Response:
    now = datetime.now(UTC)
    try:
        app, table, grant = await run_in_threadpool(
            _grant, request.path_params["table"], request.query_params.get("link", ""), now
        )
    except Forbidden as exc:
        return _error(exc, 403)
    except DomainError as exc:
        return _error(exc, 404 if exc.code == "not_found" else 422)
    name = f"{table.name}-{now:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        stream_csv(app.engine, table, grant.user_id, grant.filter),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store",
        },
    )


def export_routes() -> list[Route]:
    return [Route(PATH, export_csv, methods=["GET"])]
