"""POST /v1/private-network/ingest: what GridTokenX's simulator sends, request for request."""

from __future__ import annotations

import json
from datetime import timedelta

import base58
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MeterReading, TelemetrySample
from core.meters import register_meter
from tests.api.conftest import error_of
from tests.factories import NOW, keypair_for, make_user
from tests.gridtokenx import simulator as sim

AT = NOW - timedelta(minutes=5)


def stored(session: Session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(TelemetrySample)) or 0
    session.rollback()  # end the read: on SQLite it would hold off the API's next write
    return count


def their_meter(session: Session, serial: str, owner=None) -> str:
    """Registered as their fleet registers it: the hex public key. Returns the API key."""
    owner = owner or make_user(session)
    return register_meter(session, serial, owner.username, sim.public_key_hex(serial)).api_key


def test_their_plaintext_frame_is_accepted_then_resent(
    client: TestClient, session: Session
) -> None:
    key = their_meter(session, "GTX-0001")
    body = sim.plain("GTX-0001", generated=1.5, consumed=0.5, at=AT)
    assert '"kwh": 1.0' in json.dumps(body)  # sent as 1.0, signed as "1"
    first = sim.post(client, body, key)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted"
    again = sim.post(client, body, key)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert stored(session) == 1
    assert session.scalar(select(TelemetrySample.net_micro)) == 1_000_000
    # A sample is not a mintable amount: its interval's surplus will be.
    assert session.scalar(select(func.count()).select_from(MeterReading)) == 0
    session.rollback()


@pytest.mark.parametrize("fallback", ["seconds", "json"])
def test_the_fallbacks_their_bridge_accepts(
    client: TestClient, session: Session, fallback: str
) -> None:
    key = their_meter(session, "GTX-0002")
    body = sim.plain("GTX-0002", generated=0.75, consumed=0.25, at=AT)
    inner = body["payload"]
    seconds = int(AT.replace(microsecond=0).timestamp())
    if fallback == "seconds":
        message = f"GTX-0002:0.5:{seconds}".encode()
    else:
        # serde_json::to_vec of the payload without its signature: sorted keys, compact,
        # floats through ryu (500.0 stays "500.0"), strings as JSON strings.
        rest = {k: v for k, v in inner.items() if k != "signature"}
        message = json.dumps(rest, separators=(",", ":"), sort_keys=True).encode()
    inner["signature"] = base58.b58encode(
        bytes(sim.keypair("GTX-0002").sign_message(message))
    ).decode()
    response = sim.post(client, body, key)
    assert response.status_code == 202, response.text


def test_a_forged_tick_is_403_and_nothing_is_stored(client: TestClient, session: Session) -> None:
    key = their_meter(session, "GTX-0003")
    body = sim.plain("GTX-0003", generated=1.0, consumed=0.1, at=AT, signer=keypair_for("intruder"))
    response = sim.post(client, body, key)
    assert response.status_code == 403, response.text
    assert (error_of(response)["code"], error_of(response)["field"]) == (
        "invalid_signature",
        "payload.signature",
    )
    tampered = sim.plain("GTX-0003", generated=1.0, consumed=0.1, at=AT)
    tampered["payload"]["kwh"] = 0.95
    assert sim.post(client, tampered, key).status_code == 403
    assert stored(session) == 0


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"protocol": "modbus"}, "invalid_format", "protocol"),
        ({"device_id": "bad:id"}, "invalid_format", "device_id"),
        ({"payload": "x"}, "invalid_format", "payload"),
        ({"payload": {"timestamp": "2026-11-20T11:55:00+00:00"}}, "invalid_format", None),
    ],
)
def test_malformed_frames_are_ours_422(
    client: TestClient, session: Session, change: dict, code: str, field: str | None
) -> None:
    key = their_meter(session, "GTX-0004")
    body = {**sim.plain("GTX-0004", generated=1.0, consumed=0.0, at=AT), **change}
    response = sim.post(client, body, key)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == code
    if field:
        assert error["field"] == field
    assert stored(session) == 0


def test_a_frame_for_another_meter_with_a_meter_key_is_forbidden(
    client: TestClient, session: Session
) -> None:
    key = their_meter(session, "GTX-0005")
    their_meter(session, "GTX-0006")
    response = sim.post(client, sim.plain("GTX-0006", generated=1, consumed=0, at=AT), key)
    assert (response.status_code, error_of(response)["code"]) == (403, "forbidden")
    assert stored(session) == 0


def test_an_unknown_key_is_401(client: TestClient, session: Session) -> None:
    their_meter(session, "GTX-0007")
    body = sim.plain("GTX-0007", generated=1, consumed=0, at=AT)
    response = sim.post(client, body, "gtx_nope")
    assert (response.status_code, error_of(response)["code"]) == (401, "unauthenticated")


def test_negative_net_and_five_second_ticks_are_accepted(
    client: TestClient, session: Session
) -> None:
    key = their_meter(session, "GTX-0008")
    for second in range(0, 60, 5):
        body = sim.plain(
            "GTX-0008", generated=0.0, consumed=0.0125, at=AT + timedelta(seconds=second)
        )
        response = sim.post(client, body, key)
        assert response.status_code == 202, response.text
    assert stored(session) == 12
