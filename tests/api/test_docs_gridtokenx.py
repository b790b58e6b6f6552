"""docs/API.md's GridTokenX worked example is what their simulator sends and we accept."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from solders.keypair import Keypair
from sqlalchemy.orm import Session

from core.meters import register_meter
from core.readings.gridtokenx import parse_gridtokenx_ingest
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
