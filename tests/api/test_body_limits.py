"""Every route's body is capped before authentication and before parsing (413)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from api.app import BODY_LIMITS, DEFAULT_BODY_LIMIT
from tests.api.conftest import TestClient, error_of


def _operations(api: FastAPI) -> list[tuple[str, str]]:
    paths = api.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def test_every_route_refuses_a_body_over_its_limit_without_a_token(
    api: FastAPI, client: TestClient
) -> None:
    operations = _operations(api)
    assert len(operations) >= 15
    for method, template in operations:
        path = template.replace("{username}", "alice").replace("{serial}", "M-1")
        path = path.replace("{reading_id}", "1")
        limit = BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)
        response = client.request(method, path, content=b"x" * (limit + 1))
        assert response.status_code == 413, (method, path, response.text)
        assert error_of(response)["code"] == "payload_too_large"


@pytest.mark.parametrize("size", [DEFAULT_BODY_LIMIT, DEFAULT_BODY_LIMIT + 1])
def test_a_login_at_the_limit_is_parsed_one_byte_more_is_not(client: TestClient, size: int) -> None:
    prefix, suffix = b'{"username": "u", "password": "', b'"}'
    body = prefix + b"p" * (size - len(prefix) - len(suffix)) + suffix
    response = client.post(
        "/api/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    expected = 422 if size == DEFAULT_BODY_LIMIT else 413  # a 64 KiB password is too long
    assert response.status_code == expected, response.text
