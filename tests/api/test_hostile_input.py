"""Input a red-team pass sent, each once answered 500: now a 4xx, on SQLite and PostgreSQL.

Bodies are sent as raw bytes where the JSON escape matters (`\\ud800`, `\\u0000`): a
client library would refuse to encode them, an attacker does not.
"""

from __future__ import annotations

import json
from datetime import timedelta

import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import MeterReading, User
from tests.api.conftest import TestClient, auth_headers, error_of
from tests.factories import NOW, make_meter

READING = "/api/meters/submit-reading"
BATCH = "/api/meters/submit-batch"
AT = NOW - timedelta(hours=1)


def _stored(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(MeterReading)) or 0


def _raw(body: dict, **raw_fields: str) -> bytes:
    """`body` as JSON with some fields replaced by raw JSON text (escapes kept)."""
    text = json.dumps({**body, **dict.fromkeys(raw_fields, "@@")})
    for name, literal in raw_fields.items():
        text = text.replace(f'"{name}": "@@"', f'"{name}": {literal}', 1)
    return text.encode()


@pytest.mark.parametrize(
    ("field", "literal", "code"),
    [
        ("kwh_amount", '"1e1000000"', "invalid_format"),  # was 500 decimal.Overflow
        ("kwh_amount", "1e1000000", "invalid_format"),
        ("meter_serial", '"\\ud800"', "invalid_format"),  # was 500 UnicodeEncodeError
        ("meter_serial", '"M-1\\u0000"', "invalid_format"),  # was 500 psycopg DataError
        ("meter_signature", '"\\udfff"', "invalid_format"),
        ("reading_timestamp", '"\\u0000"', "invalid_format"),
    ],
)
def test_a_hostile_field_is_a_422(
    client: TestClient, session: Session, field: str, literal: str, code: str
) -> None:
    keys = make_meter(session, serial="M-1")
    response = client.post(READING, content=_raw(keys.payload(at=AT), **{field: literal}),
                           headers=keys.headers)  # fmt: skip
    assert (response.status_code, error_of(response)["code"]) == (422, code), response.text
    assert error_of(response)["field"] == field
    assert _stored(session) == 0


@pytest.mark.parametrize(
    "amount", ['"٥"', '"２.５"', '"1_0"', '"\\t2\\n"', '"1e2"', "1e2", '"1.0000000"', "1.0000000"]
)
def test_amounts_outside_the_grammar_are_refused_not_reinterpreted(
    client: TestClient, session: Session, amount: str
) -> None:
    keys = make_meter(session, serial="M-1")
    response = client.post(READING, content=_raw(keys.payload(at=AT), kwh_amount=amount),
                           headers=keys.headers)  # fmt: skip
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] in ("invalid_format", "too_many_decimals")
    assert _stored(session) == 0


def test_one_hostile_item_never_sinks_a_batch(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    good = [keys.payload(kwh="1", at=AT + timedelta(minutes=15 * i)) for i in range(3)]
    items = [json.dumps(item) for item in good]
    items[1:1] = [
        _raw(good[0], meter_serial='"\\ud800"').decode(),
        _raw(good[0], meter_serial='"M\\u0000"').decode(),
        _raw(good[0], kwh_amount='"1e1000000"').decode(),
    ]
    response = client.post(BATCH, content=f'{{"readings": [{", ".join(items)}]}}',
                           headers=keys.headers)  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted", "rejected", "rejected", "rejected", "accepted", "accepted",
    ]  # fmt: skip
    assert {r["error"]["field"] for r in body["results"] if r["status"] == "rejected"} == {
        "meter_serial",
        "kwh_amount",
    }
    assert _stored(session) == 3


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "admin\\u0000", "password": "x"}',  # was 500 on PostgreSQL
        b'{"username": "\\ud800", "password": "x"}',
        b'{"username": "admin", "password": "\\ud800"}',
        b'{"username": "' + b"a" * 65 + b'", "password": "x"}',
    ],
)
def test_a_hostile_login_is_a_422_without_an_account(client: TestClient, body: bytes) -> None:
    response = client.post("/api/auth/login", content=body)
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_format")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/admin/users/admin%00/disable"),
        ("POST", "/api/admin/meters/M%00/suspend"),
        ("GET", "/api/meters/minting-status/9223372036854775808"),
        ("GET", "/api/meters/minting-status/0"),
        ("GET", "/api/admin/meters/unminted?page=2e17"),
        ("GET", "/api/admin/meters/unminted?page=99999999999999999999"),
        ("GET", "/api/admin/meters/unminted?status=%00"),
    ],
)
def test_hostile_path_and_query_values_are_4xx(
    client: TestClient, app: App, admin: User, method: str, path: str
) -> None:
    response = client.request(method, path, headers=auth_headers(app, admin))
    assert response.status_code == 422, response.text
    assert error_of(response)["code"] == "invalid_format"


def test_my_readings_page_is_bounded(client: TestClient, app: App, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    owner = session.get(User, keys.meter.owner_id)
    response = client.get("/api/meters/my-readings?page=2e17", headers=auth_headers(app, owner))
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_format")


@pytest.mark.parametrize("reading_id", [2**63, -1, 0])
def test_mint_from_reading_ids_are_bounded(
    client: TestClient, app: App, admin: User, reading_id: int
) -> None:
    body = {"reading_id": reading_id}
    url = "/api/admin/meters/mint-from-reading"
    response = client.post(url, json=body, headers=auth_headers(app, admin))
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_format")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "9" * 30, "role": "admin", "exp": 2_000_000_000},  # sub beyond 64 bits
        {"sub": "1", "role": "admin", "exp": 10**20},  # exp beyond any datetime
        {"sub": "１", "role": "admin", "exp": 2_000_000_000},  # a non-ASCII digit
        {"sub": 1, "role": "admin", "exp": 2_000_000_000},
    ],
)
def test_a_validly_signed_token_with_out_of_range_claims_is_a_401(
    client: TestClient, app: App, admin: User, claims: dict
) -> None:
    token = jwt.encode({**claims, "jti": "x"}, app.api_secret_key(), algorithm="HS256")
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b"not json", b'{"username": '])
def test_a_body_that_is_not_utf8_json_is_422_invalid_format(
    client: TestClient, body: bytes
) -> None:
    response = client.post(
        "/api/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, error_of(response)["code"]) == (422, "invalid_format")


def test_a_wrong_method_is_405_with_every_allowed_method(
    client: TestClient, app: App, admin: User
) -> None:
    response = client.delete("/api/admin/users", headers=auth_headers(app, admin))
    assert (response.status_code, error_of(response)["code"]) == (405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    options = client.options("/api/admin/users")
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_a_meter_key_in_both_headers_is_refused(client: TestClient, session: Session) -> None:
    keys = make_meter(session, serial="M-1")
    headers = {**keys.headers, "X-API-Key": keys.api_key}
    response = client.post(READING, json=keys.payload(at=AT), headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthenticated")
    assert "not both" in error_of(response)["message"]
    assert _stored(session) == 0
