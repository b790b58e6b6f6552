"""docs/API.md's GridTokenX worked example is what their simulator sends and we accept."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from solders.keypair import Keypair
from sqlalchemy.orm import Session

from core.bootstrap import App
from core.device_keys import set_device_key
from core.meters import register_meter
from core.readings.encryption import open_frame
from core.readings.gridtokenx import parse_gridtokenx_ingest, parse_gridtokenx_payload
from core.units import JsonNumber
from tests.factories import make_user
from tests.gridtokenx import simulator as sim

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def _section(title: str) -> str:
    return DOC.read_text(encoding="utf-8").split(f"### {title}", 1)[1]


def _table(text: str) -> dict[str, str]:
    block = text.split("```", 2)[1]
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.strip().splitlines()]
    return {key: value for key, value in rows}


def _body(text: str) -> str:
    return text.split("```json\n", 1)[1].split("```", 1)[0]


def test_the_plaintext_example_is_their_signature() -> None:
    section = _section("Worked example (GridTokenX form)")
    doc, raw = _table(section), _body(section)
    seed = hashlib.sha256(f"gridtokenx-sim:{doc['device_id']}".encode()).digest()
    assert seed.hex() == doc["seed (hex)"]
    key = Keypair.from_seed(seed)
    assert bytes(key.pubkey()).hex() == doc["public key (hex)"]
    assert str(key.pubkey()) == doc["public key"]
    body = json.loads(raw, parse_float=JsonNumber)
    assert body["payload"]["kwh"].literal == doc["kwh (JSON)"]
    submission = parse_gridtokenx_ingest(body)
    assert submission.signed_messages[0].decode() == doc["message"]
    assert str(key.sign_message(doc["message"].encode())) == doc["signature"]
    assert submission.signature.verify(key.pubkey(), submission.signed_messages[0])
    assert json.loads(raw) == sim.plain(
        "GTX-0001",
        generated=1.5,
        consumed=0.5,
        at=submission.reading_timestamp,
        interval_secs=900,
    )


def test_the_example_body_is_accepted(client: TestClient, session: Session) -> None:
    section = _section("Worked example (GridTokenX form)")
    doc = _table(section)
    owner = make_user(session)
    api_key = register_meter(
        session, doc["device_id"], owner.username, doc["public key (hex)"]
    ).api_key
    response = client.post(
        sim.URL,
        content=_body(section),
        headers={"X-API-KEY": api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text


def test_the_encrypted_example_opens_to_its_plaintext(
    client: TestClient, session: Session, app: App
) -> None:
    section = _section("Encrypted frames (dlms-enc)")
    doc = _table(section.split("Worked example", 1)[1])
    plaintext = section.split("The plaintext:", 1)[1].split("```", 2)[1].strip()
    raw = _body(section)
    key = bytes.fromhex(doc["aes_key (hex)"])
    assert key == sim.aes_key(doc["device_id"])  # their HKDF derivation
    body = json.loads(raw, parse_float=JsonNumber)
    assert base64.b64decode(body["payload"]["enc"]["nonce"]) == base64.b64decode(
        doc["nonce (base64)"]
    )
    opened = open_frame(doc["device_id"], body["payload"], key)
    assert opened.counter == int(doc["counter"])
    assert f"{doc['device_id']}:{opened.counter}" == doc["aad"]
    assert json.dumps(json.loads(plaintext), separators=(",", ":"), sort_keys=True) == plaintext
    assert opened.payload == json.loads(plaintext, parse_float=JsonNumber)
    inner = parse_gridtokenx_payload(doc["device_id"], opened.payload, counter=opened.counter)
    assert inner.signed_messages[0].decode() == doc["signed message"]
    owner = make_user(session)
    api_key = register_meter(
        session, doc["device_id"], owner.username, sim.public_key_hex(doc["device_id"])
    ).api_key
    set_device_key(session, doc["device_id"], key.hex(), app.device_key_wrap(), required=True)
    response = client.post(
        sim.URL, content=raw, headers={"X-API-KEY": api_key, "Content-Type": "application/json"}
    )
    assert response.status_code == 202, response.text
