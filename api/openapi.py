"""OpenAPI helpers: every route lists its error codes with an example of each."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api import examples as ex
from api.errors import error_body, status_for
from api.schemas import ErrorOut

_DESCRIPTIONS = {
    401: "Unauthenticated, or the meter signature does not verify",
    403: "Forbidden for this key or role",
    404: "Not found",
    409: "Conflict with stored state",
    413: "Payload too large",
    422: "Invalid input",
    429: "Rate limited; see Retry-After",
}


_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "duplicate_reading": {"existing_reading_id": 41},
    "rate_limited": {"limit": 120, "burst": 1000, "remaining": 3, "retry_after": 4},
}


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error codes, grouped by status, one example each."""
    by_status: dict[int, dict[str, Any]] = {}
    for code in codes:
        status = status_for(code)
        extra = _EXTRA_FIELDS.get(code, {})
        body = error_body(code, ex.ERROR_MESSAGES[code], ex.ERROR_FIELDS.get(code), **extra)
        entry = by_status.setdefault(
            status,
            {
                "model": ErrorOut,
                "description": _DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"examples": {}}},
            },
        )
        entry["content"]["application/json"]["examples"][code] = {"value": body}
        if code == "rate_limited":
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds until the request fits the budget (meter or login)",
                    "schema": {"type": "integer"},
                }
            }
    return dict(by_status)


def json_request_body(model: type[BaseModel], example: Any) -> dict[str, Any]:
    """`openapi_extra` for a body the route parses itself (exact decimals)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "example": example,
                }
            },
        }
    }


def install_openapi(app: FastAPI, extra_models: tuple[type[BaseModel], ...]) -> None:
    """Our error shape everywhere (not FastAPI's HTTPValidationError), plus the schemas
    of bodies the routes parse themselves."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in extra_models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
        invalid = error_responses("invalid_format")[422]
        invalid_content = {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorOut"},
                "examples": invalid["content"]["application/json"]["examples"],
            }
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                if response and "HTTPValidationError" in str(response):
                    operation["responses"]["422"] = {
                        "description": invalid["description"],
                        "content": invalid_content,
                    }
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
