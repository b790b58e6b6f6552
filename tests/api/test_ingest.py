"""POST /api/meters/submit-reading over HTTP: every CONTRACT rejection, resends, exactness."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Event, MeterReading
from tests.api.conftest import WallClock, error_of
from tests.factories import NOW, keypair_for, make_meter, rfc3339, sign

URL = "/api/meters/submit-reading"
AT = NOW - timedelta(minutes=10)


def readings(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(MeterReading)) or 0


def test_a_reading_is_accepted_then_resent(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    body = keys.payload(kwh="3.4125", at=AT)
    first = client.post(URL, json=body, headers=keys.headers)
    assert first.status_code == 201, first.text
    reading = first.json()
    assert reading == {
        "id": reading["id"],
        "meter_serial": "M-1",
        "user_id": keys.meter.owner_id,
        "wallet_address": reading["wallet_address"],
        "kwh_amount": "3.412500",
        "reading_timestamp": rfc3339(AT),
        "submitted_at": rfc3339(NOW),
        "status": "pending",
        "minted": False,
        "token_base_units": None,
        "mint_tx_signature": None,
    }
    again = client.post(URL, json=body, headers={"X-API-Key": keys.api_key})
    assert (again.status_code, again.json()) == (200, reading)
    assert readings(session) == 1


@pytest.mark.parametrize("text", ["2.01", "0.29"])
def test_json_numbers_are_exact(client: TestClient, session: Session, text: str) -> None:
    keys = make_meter(session, serial="M-1")
    raw = json.dumps(keys.payload(kwh=text, at=AT)).replace(f'"{text}"', text)
    assert f'"kwh_amount": {text},' in raw
    response = client.post(
        URL, content=raw, headers={**keys.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["kwh_amount"] == f"{text}0000"
    stored = session.scalar(select(MeterReading.kwh_micro))
    assert stored == int(text.replace(".", "")) * 10_000


def _post(client: TestClient, keys, body, **headers):
    return client.post(URL, json=body, headers={**keys.headers, **headers})


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"kwh_amount": "1.0000001"}, 422, "too_many_decimals", "kwh_amount"),
        ({"kwh_amount": "abc"}, 422, "invalid_format", "kwh_amount"),
        ({"reading_timestamp": "2026-11-20T11:50:00"}, 422, "invalid_format", "reading_timestamp"),
        ({"meter_signature": "xyz"}, 422, "invalid_format", "meter_signature"),
        ({"kwh_amount": "1.6"}, 401, "invalid_signature", "meter_signature"),
        ({"meter_serial": "M-404"}, 404, "unknown_meter", "meter_serial"),
        ({"meter_serial": "M-2"}, 403, "forbidden", "meter_serial"),
    ],
)
def test_rejections_carry_their_code_and_field(
    client: TestClient, session: Session, change: dict, status: int, code: str, field: str
) -> None:
    keys = make_meter(session, serial="M-1")
    make_meter(session, serial="M-2")
    response = _post(client, keys, {**keys.payload(kwh="1.5", at=AT), **change})
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert readings(session) == 0
    failed = session.scalars(
        select(Event).where(Event.type == "meter_reading_validation_failed")
    ).all()
    assert [(e.payload["error_code"], e.user_id) for e in failed] == [(code, None)]


@pytest.mark.parametrize(
    ("kwh", "at", "code"),
    [
        ("0", AT, "kwh_out_of_range"),
        ("100.000001", AT, "kwh_out_of_range"),
        ("1", NOW + timedelta(seconds=61), "timestamp_in_future"),
        ("1", NOW - timedelta(days=7, seconds=1), "reading_too_old"),
    ],
)
def test_limits_of_the_configuration(
    client: TestClient, session: Session, kwh: str, at, code: str
) -> None:
    keys = make_meter(session, serial="M-1")
    response = _post(client, keys, keys.payload(kwh=kwh, at=at))
    assert (response.status_code, error_of(response)["code"]) == (422, code)


def test_a_signature_by_another_key_is_forged(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    forged = {**keys.payload(at=AT), "meter_signature": sign(keypair_for("x"), "M-1", AT, "1.5")}
    response = _post(client, keys, forged)
    assert (response.status_code, error_of(response)["code"]) == (401, "invalid_signature")


def test_a_duplicate_names_the_existing_reading(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    first = _post(client, keys, keys.payload(kwh="1.5", at=AT)).json()
    response = _post(client, keys, keys.payload(kwh="1.5", at=AT + timedelta(minutes=5)))
    assert response.status_code == 409
    error = error_of(response)
    assert (error["code"], error["existing_reading_id"]) == ("duplicate_reading", first["id"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer gtx_wrong"},
        {"X-API-Key": "gtx_wrong"},
        {"Authorization": "Basic x"},
    ],
)
def test_without_a_valid_key_nothing_is_written(
    client: TestClient, session: Session, headers: dict
) -> None:
    keys = make_meter(session, serial="M-1")
    response = client.post(URL, json=keys.payload(at=AT), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["code"] == "unauthenticated"
    assert session.scalar(select(func.count()).select_from(Event)) == 1  # registration only


def test_a_suspended_meter_is_refused(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1", suspended=True)
    response = _post(client, keys, keys.payload(at=AT))
    assert (response.status_code, error_of(response)["code"]) == (403, "meter_suspended")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b'{"kwh_amount": NaN}', b'{"a": 1e99999}', b"9" * 5000],
)
def test_garbage_bodies_are_invalid_format(
    client: TestClient, session: Session, raw: bytes
) -> None:
    keys = make_meter(session, serial="M-1")
    response = client.post(URL, content=raw, headers=keys.headers)
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_format")


def test_an_oversized_body_is_refused_before_parsing(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    body = {**keys.payload(at=AT), "padding": "x" * 20_000}
    response = _post(client, keys, body)
    assert (response.status_code, error_of(response)["code"]) == (413, "payload_too_large")


def test_the_clock_decides_what_is_in_the_future(
    client: TestClient, session: Session, clock: WallClock
) -> None:
    keys = make_meter(session, serial="M-1")
    ahead = NOW + timedelta(minutes=5)
    assert _post(client, keys, keys.payload(at=ahead)).status_code == 422
    clock.now = NOW + timedelta(minutes=4, seconds=30)
    assert _post(client, keys, keys.payload(at=ahead)).status_code == 201


def test_last_seen_is_updated(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    _post(client, keys, keys.payload(at=AT))
    session.refresh(keys.meter)
    assert keys.meter.last_seen_at == NOW
