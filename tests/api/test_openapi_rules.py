"""The OpenAPI schema states the rules the API enforces (clients and schemathesis read it):
reading statuses, the serial and kWh grammars, bounded pages and ids, the 429 budget."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.schemas import MAX_ID
from core.db.models import ReadingStatus
from core.meters import SERIAL_PATTERN
from core.readings.queries import MAX_PAGE
from core.units import InvalidAmount, parse_kwh

AMOUNTS = ["1", "2.5", "0.000001", "100", "1.0000001", "1e2", "٥", "２.５", "1_0", "\t2\n",
           " 2", "-1", "+1", ".5", "5.", "0x10", "1.5.5"]  # fmt: skip
SERIALS = ["MTR-001", "a", "A" * 64, "A" * 65, "-lead", "with space", "nul\x00", "ümlaut", ""]


@pytest.fixture
def schema(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


def _param(schema: dict, path: str, method: str, name: str) -> dict:
    operation = schema["paths"][path][method]
    return next(p for p in operation["parameters"] if p["name"] == name)["schema"]


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def _accepts_kwh(text: str) -> bool:
    try:
        parse_kwh(text)
    except InvalidAmount:
        return False
    return True


def test_reading_statuses_are_an_enum(schema: dict) -> None:
    statuses = {status.value for status in ReadingStatus}
    components = schema["components"]["schemas"]
    assert set(components["ReadingOut"]["properties"]["status"]["enum"]) == statuses
    for path in ("/api/meters/my-readings", "/api/admin/meters/unminted"):
        query = _param(schema, path, "get", "status")
        choices = [_resolve(schema, choice) for choice in query.get("anyOf", [query])]
        enums = [set(choice["enum"]) for choice in choices if "enum" in choice]
        assert enums == [statuses], (path, query)


def test_the_serial_and_kwh_grammars_are_the_ones_enforced(schema: dict) -> None:
    reading_in = schema["components"]["schemas"]["ReadingIn"]["properties"]
    serial = reading_in["meter_serial"]
    assert serial["maxLength"] == 64
    for text in SERIALS:
        stated = re.fullmatch(serial["pattern"].strip("^$"), text) is not None
        assert stated == (SERIAL_PATTERN.fullmatch(text) is not None), text
    [kwh_text] = [c for c in reading_in["kwh_amount"]["anyOf"] if c["type"] == "string"]
    for text in AMOUNTS:
        stated = re.fullmatch(kwh_text["pattern"].strip("^$"), text) is not None
        assert stated == _accepts_kwh(text), text


def test_integers_are_bounded(schema: dict) -> None:
    for path in ("/api/meters/my-readings", "/api/admin/meters/unminted"):
        assert _param(schema, path, "get", "page")["maximum"] == MAX_PAGE
    reading_id = _param(schema, "/api/meters/minting-status/{reading_id}", "get", "reading_id")
    assert reading_id["maximum"] == MAX_ID


def test_a_429_documents_the_budget(schema: dict) -> None:
    batch = schema["paths"]["/api/meters/submit-batch"]["post"]["responses"]["429"]
    example = batch["content"]["application/json"]["examples"]["rate_limited"]["value"]
    assert {"limit", "burst", "remaining", "retry_after"} <= set(example["error"])
    assert "Retry-After" in batch["headers"]
    detail = schema["components"]["schemas"]["ErrorDetail"]["properties"]
    assert {"limit", "burst", "remaining", "retry_after"} <= set(detail)
