"""The meter's reading budget over HTTP: a batch of N spends N, refused whole or not at all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from core.bootstrap import App
from core.config import Settings
from core.db.engine import read_only
from core.db.models import MeterReading
from tests.api.conftest import TestClient, Ticks, error_of
from tests.factories import NOW, MeterKeys, make_meter

SINGLE = "/api/meters/submit-reading"
BATCH = "/api/meters/submit-batch"
AT = NOW - timedelta(hours=3)
STEP = timedelta(minutes=15)
PER_MINUTE, BURST = 6, 5  # one token per 10 s, at most 5 held


@pytest.fixture
def limited(app: App, make_settings: Callable[..., Settings], ticks: Ticks):
    app.settings = make_settings(
        DATABASE_URL=app.settings.app.effective_database_url,
        METER_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE),
        METER_RATE_LIMIT_BURST=str(BURST),
    )
    api = create_app(app, clock=lambda: NOW, monotonic=ticks, create_first_admin=False)
    with TestClient(api, client=("127.0.0.1", 50000)) as client:
        yield client


def _stored(session: Session) -> int:
    # Its own read-only connection: the test's session keeps no lock while the API writes.
    with Session(read_only(session.get_bind())) as reader:
        return reader.scalar(select(func.count()).select_from(MeterReading)) or 0


def _batch(keys: MeterKeys, first: int, count: int) -> dict:
    return {"readings": [keys.payload(at=AT + STEP * (first + i)) for i in range(count)]}


def _limited_body(response) -> dict:
    assert response.status_code == 429, response.text
    error = error_of(response)
    assert error["code"] == "rate_limited"
    assert error["retry_after"] == int(response.headers["Retry-After"])
    return error


def test_after_the_single_reading_limit_a_batch_is_refused(
    limited: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    for i in range(BURST):
        response = limited.post(SINGLE, json=keys.payload(at=AT + STEP * i), headers=keys.headers)
        assert response.status_code == 201, response.text
    error = _limited_body(limited.post(BATCH, json=_batch(keys, BURST, 1), headers=keys.headers))
    assert (error["limit"], error["burst"], error["remaining"], error["retry_after"]) == (
        PER_MINUTE,
        BURST,
        0,
        60 // PER_MINUTE,
    )
    assert _stored(session) == BURST


def test_a_batch_bigger_than_what_remains_is_refused_whole(
    limited: TestClient, session: Session, ticks: Ticks
) -> None:
    keys = make_meter(session, serial="M-1")
    for i in range(3):
        assert limited.post(SINGLE, json=keys.payload(at=AT + STEP * i), headers=keys.headers)
    # 2 tokens remain; 3 readings need one more: 10 s away.
    batch = _batch(keys, 3, 3)
    error = _limited_body(limited.post(BATCH, json=batch, headers=keys.headers))
    assert (error["remaining"], error["retry_after"]) == (BURST - 3, 10)
    assert _stored(session) == 3
    # The refusal spent nothing: 9.9 s later still short, at 10 s the batch fits.
    ticks.now += 9.9
    _limited_body(limited.post(BATCH, json=batch, headers=keys.headers))
    ticks.now += 0.1
    response = limited.post(BATCH, json=batch, headers=keys.headers)
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    assert _stored(session) == 6
    # Every token is spent now.
    _limited_body(limited.post(SINGLE, json=keys.payload(at=AT + STEP * 6), headers=keys.headers))


def test_a_batch_over_the_burst_never_fits_and_spends_nothing(
    limited: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    response = limited.post(BATCH, json=_batch(keys, 0, BURST + 1), headers=keys.headers)
    assert response.status_code == 413
    assert (error_of(response)["code"], error_of(response)["field"]) == (
        "payload_too_large",
        "readings",
    )
    assert _stored(session) == 0
    response = limited.post(BATCH, json=_batch(keys, 0, BURST), headers=keys.headers)
    assert response.json()["accepted"] == BURST


def test_rejected_items_and_empty_batches_spend_too_and_meters_are_apart(
    limited: TestClient, session: Session
) -> None:
    keys = make_meter(session, serial="M-1")
    other = make_meter(session, serial="M-2")
    invalid = {"readings": [{"meter_serial": "M-1"}] * 3}
    assert limited.post(BATCH, json=invalid, headers=keys.headers).json()["rejected"] == 3
    assert limited.post(BATCH, json={"readings": []}, headers=keys.headers).status_code == 200
    # 3 + 1 spent: one left.
    assert limited.post(BATCH, json=_batch(keys, 0, 1), headers=keys.headers).status_code == 200
    _limited_body(limited.post(BATCH, json={"readings": []}, headers=keys.headers))
    response = limited.post(BATCH, json=_batch(other, 0, BURST), headers=other.headers)
    assert response.json()["accepted"] == BURST
