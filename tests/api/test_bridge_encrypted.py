"""dlms-enc: AES-256-GCM frames as their simulator seals them; replay, tampering, downgrade."""

from __future__ import annotations

import base64
import logging
import stat
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.db.models import Event, Meter, TelemetrySample, User
from tests.api.conftest import auth_headers, error_of
from tests.factories import NOW, keypair_for, make_user
from tests.gridtokenx import simulator as sim

AT = NOW - timedelta(minutes=5)
COUNTER = 1_795_175_700_000_000  # their counters start from wall-clock microseconds


def samples(session: Session) -> list[tuple[int | None, int]]:
    session.expire_all()
    rows = session.execute(
        select(TelemetrySample.counter, TelemetrySample.net_micro).order_by(TelemetrySample.id)
    ).all()
    session.rollback()
    return [tuple(row) for row in rows]


@pytest.fixture
def enc_meter(client: TestClient, session: Session, app: App, admin: User) -> str:
    """GTX-ENC registered through the API with their derived AES key; plaintext refused."""
    owner = make_user(session)
    response = client.post(
        "/api/admin/meters",
        json={
            "serial": "GTX-ENC",
            "owner_username": owner.username,
            "public_key": sim.public_key_hex("GTX-ENC"),
            "aes_key": sim.aes_key("GTX-ENC").hex(),
            "encryption_required": True,
        },
        headers=auth_headers(app, admin),
    )
    assert response.status_code == 201, response.text
    assert sim.aes_key("GTX-ENC").hex() not in response.text
    return response.json()["api_key"]


def frame(counter: int, seconds: int = 0, **kwargs) -> dict:
    kwargs.setdefault("generated", 0.0)
    kwargs.setdefault("consumed", 0.0125)  # night: net below zero
    return sim.encrypted("GTX-ENC", counter, at=AT + timedelta(seconds=seconds), **kwargs)


def test_encrypted_ticks_are_accepted_and_a_replay_is_409(
    client: TestClient, session: Session, enc_meter: str
) -> None:
    for step in range(3):
        response = sim.post(client, frame(COUNTER + step, 5 * step), enc_meter)
        assert response.status_code == 202, response.text
    replay = frame(COUNTER + 2, 10)
    again = sim.post(client, replay, enc_meter)
    assert (again.status_code, error_of(again)["code"]) == (409, "replayed_counter")
    older = sim.post(client, frame(COUNTER + 1, 60), enc_meter)
    assert older.status_code == 409
    assert samples(session) == [(COUNTER + step, -12_500) for step in range(3)]


def test_a_tampered_ciphertext_is_400_and_does_not_move_the_counter(
    client: TestClient, session: Session, enc_meter: str
) -> None:
    body = frame(COUNTER)
    sealed = bytearray(base64.b64decode(body["payload"]["enc"]["ciphertext"]))
    sealed[10] ^= 0x01
    body["payload"]["enc"]["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    tampered = sim.post(client, body, enc_meter)
    assert (tampered.status_code, error_of(tampered)["code"]) == (400, "decrypt_failed")
    # The counter under another AAD: the tag binds "{device_id}:{counter}".
    moved = frame(COUNTER)
    moved["payload"]["enc"]["counter"] = COUNTER + 99
    assert sim.post(client, moved, enc_meter).status_code == 400
    other_key = frame(COUNTER, key=bytes(32))
    assert sim.post(client, other_key, enc_meter).status_code == 400
    assert samples(session) == []
    assert sim.post(client, frame(COUNTER), enc_meter).status_code == 202


def test_plaintext_from_an_encrypting_meter_is_426(
    client: TestClient, session: Session, enc_meter: str
) -> None:
    body = sim.plain("GTX-ENC", generated=1.0, consumed=0.0, at=AT)
    response = sim.post(client, body, enc_meter)
    assert (response.status_code, error_of(response)["code"]) == (426, "encryption_required")
    assert samples(session) == []


def test_a_forged_signature_inside_is_403(
    client: TestClient, session: Session, enc_meter: str
) -> None:
    body = frame(COUNTER, signer=keypair_for("intruder"))
    response = sim.post(client, body, enc_meter)
    assert (response.status_code, error_of(response)["code"]) == (403, "invalid_signature")
    assert samples(session) == []


def test_the_key_is_sealed_at_rest_and_never_logged(
    client: TestClient,
    session: Session,
    app: App,
    enc_meter: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = sim.aes_key("GTX-ENC")
    assert sim.post(client, frame(COUNTER), enc_meter).status_code == 202
    stored = session.scalar(select(Meter.enc_key).where(Meter.serial == "GTX-ENC"))
    session.rollback()
    assert stored and key.hex() not in stored.lower() and key not in base64.b64decode(stored)
    wrap = app.settings.app.data_dir / "secrets" / "device_key_wrap"
    assert stat.S_IMODE(wrap.stat().st_mode) == 0o600
    assert key.hex() not in caplog.text
    payloads = [str(p) for p in session.scalars(select(Event.payload))]
    session.rollback()
    assert payloads and not any(key.hex() in p for p in payloads)


def test_a_meter_without_a_key_cannot_send_encrypted(client: TestClient, session: Session) -> None:
    from core.meters import register_meter

    owner = make_user(session)
    key = register_meter(session, "GTX-NOKEY", owner.username, sim.public_key_hex("GTX-NOKEY"))
    body = sim.encrypted("GTX-NOKEY", 1, generated=1.0, consumed=0.0, at=AT)
    response = sim.post(client, body, key.api_key)
    assert (response.status_code, error_of(response)["code"]) == (400, "decrypt_failed")


def test_a_key_set_again_is_used_at_once_never_the_one_before(
    client: TestClient, session: Session, app: App, admin: User, enc_meter: str
) -> None:
    """The api keeps opened keys' ciphers in memory (core.readings.encryption
    device_cipher): after a rotation, a re-provisioning of the first key and a removal,
    each frame is judged by the key stored at that moment."""
    first, second = sim.aes_key("GTX-ENC"), bytes(range(32))

    def provision(key: bytes | None, required: bool = True) -> None:
        body = {"aes_key": key.hex() if key else None, "required": required}
        answer = client.put(
            "/api/admin/meters/GTX-ENC/encryption", json=body, headers=auth_headers(app, admin)
        )
        assert answer.status_code == 204, answer.text

    def send(step: int, key: bytes) -> tuple[int, str | None]:
        response = sim.post(client, frame(COUNTER + step, 5 * step, key=key), enc_meter)
        return response.status_code, (error_of(response)["code"] if response.is_error else None)

    assert send(0, first) == (202, None)  # the first key's cipher is now in memory
    provision(second)
    assert send(1, first) == (400, "decrypt_failed")
    assert send(2, second) == (202, None)
    provision(first)  # the same key again: sealed anew, the second one no longer opens
    assert send(3, second) == (400, "decrypt_failed")
    assert send(4, first) == (202, None)
    provision(None, required=False)
    assert send(5, first) == (400, "decrypt_failed")
    plain = sim.plain("GTX-ENC", generated=0.0, consumed=0.0125, at=AT + timedelta(seconds=30))
    assert sim.post(client, plain, enc_meter).status_code == 202
    assert samples(session) == [(COUNTER + s, -12_500) for s in (0, 2, 4)] + [(None, -12_500)]
