"""The one place domain errors become HTTP: `{"error": {"code", "message", "field"?}}`.

core raises small exceptions with a stable `code`; the status for each code is
listed here and nowhere else. Anything unexpected is a 500 with code
`internal_error`, logged with its traceback; a rejection of input never is.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from core.errors import DomainError
from core.ratelimit import RateLimited
from core.text import printable

log = logging.getLogger("api")

STATUS_BY_CODE: dict[str, int] = {
    "decrypt_failed": 400,
    "unauthenticated": 401,
    "invalid_signature": 401,
    "meter_suspended": 403,
    "forbidden": 403,
    "unknown_meter": 404,
    "not_found": 404,
    "duplicate_reading": 409,
    "replayed_counter": 409,
    "conflict": 409,
    "already_minted": 409,
    "username_taken": 409,
    "serial_taken": 409,
    "last_admin": 409,
    "certificate_not_active": 409,
    "payload_too_large": 413,
    "kwh_out_of_range": 422,
    "too_many_decimals": 422,
    "timestamp_in_future": 422,
    "reading_too_old": 422,
    "invalid_format": 422,
    "invalid_wallet": 422,
    "invalid_owner": 422,
    "invalid_setting": 422,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "invalid_filter": 422,
    "encryption_required": 426,
    "rate_limited": 429,
    "server_busy": 503,
    "database_not_migrated": 503,
}
_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def status_for(code: str) -> int:
    # An unlisted code is still the client's problem, never a 5xx.
    return STATUS_BY_CODE.get(code, 422)


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    # A message may quote the input; a lone surrogate in it could not be encoded as JSON.
    error: dict[str, Any] = {"code": code, "message": printable(message)}
    if field:
        error["field"] = printable(field)
    error.update(extra)
    return {"error": error}


def domain_error_response(exc: DomainError) -> JSONResponse:
    status = status_for(exc.code)
    details = getattr(exc, "details", None) or {}
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_secs)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field, **details), status, headers=headers
    )


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    message = str(first.get("msg", "invalid request"))
    field = ".".join(location) or None
    return JSONResponse(error_body("invalid_format", message, field), 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "There was an error parsing the body" (not UTF-8, not JSON): the
        # contract's answer to a malformed body is 422 invalid_format.
        return JSONResponse(
            error_body("invalid_format", "the body is not valid JSON in UTF-8", "body"), 422
        )
    if exc.status_code == 405:
        return _method_not_allowed(request)
    code = _HTTP_CODES.get(exc.status_code, "invalid_format")
    return JSONResponse(
        error_body(code, str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None)
    )


def _method_not_allowed(request: Request) -> Response:
    """Allow lists the methods of every route on this path (Starlette names only the
    first route's); OPTIONS is answered with them instead of refused."""
    route = request.scope.get("route")
    allowed = {"OPTIONS", *(getattr(route, "methods", None) or ())}
    # Included routers are not flat lists here; the OpenAPI paths are.
    operations = request.app.openapi().get("paths", {}).get(getattr(route, "path", None), {})
    allowed |= {method.upper() for method in operations}
    if "GET" in allowed:
        allowed.add("HEAD")
    headers = {"Allow": ", ".join(sorted(allowed))}
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=headers)
    message = f"{request.method} is not allowed here; use {headers['Allow']}"
    return JSONResponse(error_body("method_not_allowed", message), 405, headers=headers)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database dropped the connection (restart, failover): retry, nothing was stored.

    The API's pool does not ping before each checkout (a round trip per request);
    a dead connection surfaces here instead, once, and the pool reconnects.
    """
    assert isinstance(exc, DBAPIError)
    if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
        return await _unexpected(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
    return JSONResponse(
        error_body("database_unavailable", "the database is unavailable; retry shortly"),
        503,
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ClientDisconnect):
        # The client left mid-body (or serving.body_limit refused it): nobody to answer.
        return JSONResponse(error_body("client_disconnected", "the client went away"), 400)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal error; see the server log"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
