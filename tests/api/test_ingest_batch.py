"""POST /api/meters/submit-batch (its rate limit: tests/api/test_reading_budget.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import MeterReading
from tests.api.conftest import TestClient, error_of
from tests.factories import NOW, make_meter

URL = "/api/meters/submit-batch"
AT = NOW - timedelta(hours=3)


def test_a_batch_accepts_what_is_valid(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    items = [
        keys.payload(kwh="2.01", at=AT),
        {**keys.payload(kwh="1", at=AT + timedelta(minutes=15)), "kwh_amount": "1.5"},
        keys.payload(kwh="0.29", at=AT + timedelta(minutes=30)),
        keys.payload(kwh="2.01", at=AT),
        {"meter_serial": "M-1"},
    ]
    raw = json.dumps({"readings": items}).replace('"0.29"', "0.29")
    response = client.post(URL, content=raw, headers=keys.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (2, 2, 1)
    results = body["results"]
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "duplicate",
        "rejected",
    ]
    assert results[3]["id"] == results[0]["id"] and "error" not in results[3]
    assert results[1]["error"]["code"] == "invalid_signature"
    assert results[4]["error"] == {
        "code": "invalid_format",
        "message": "kwh_amount is required",
        "field": "kwh_amount",
    }
    amounts = session.scalars(select(MeterReading.kwh_micro).order_by(MeterReading.id)).all()
    assert amounts == [2_010_000, 290_000]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"readings": "nope"}, 422, "invalid_format"),
        ([], 422, "invalid_format"),
        ({"readings": [{}] * 1001}, 413, "payload_too_large"),
        ({"readings": [{"pad": "x" * 1100}] * 1000}, 413, "payload_too_large"),
    ],
)
def test_a_batch_refused_as_a_whole(
    client: TestClient, session: Session, body, status: int, code: str
) -> None:
    keys = make_meter(session, serial="M-1")
    response = client.post(URL, json=body, headers=keys.headers)
    assert (response.status_code, error_of(response)["code"]) == (status, code)
