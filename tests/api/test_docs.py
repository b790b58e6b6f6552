"""docs/API.md's worked example and error table agree with the code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from solders.keypair import Keypair

from api import examples as ex
from api.errors import STATUS_BY_CODE
from core.readings.rules import parse_timestamp
from core.signatures import reading_message, unix_ms, verify_reading_signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def _worked_example() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("### Worked example", 1)[1].split("```", 2)[1]
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.strip().splitlines()]
    return {key: value for key, value in rows}


def test_the_worked_example_is_what_the_code_computes() -> None:
    doc = _worked_example()
    key = Keypair.from_seed(bytes.fromhex(doc["seed (hex)"]))
    assert str(key.pubkey()) == doc["public key"] == ex.EXAMPLE_PUBLIC_KEY
    assert bytes(key.pubkey()).hex() == doc["public key (hex)"]
    at = parse_timestamp(doc["reading_timestamp"])
    assert at == datetime(2026, 11, 20, 11, 55, tzinfo=UTC)
    assert unix_ms(at) == int(doc["unix_ms"]) == ex.EXAMPLE_UNIX_MS
    message = reading_message(doc["meter_serial"], at, Decimal(doc["kwh_amount"]))
    assert message.decode() == doc["message"] == ex.EXAMPLE_MESSAGE
    signature = key.sign_message(message)
    assert str(signature) == doc["signature"] == ex.EXAMPLE_SIGNATURE
    assert bytes(signature).hex() == doc["signature (hex)"]
    assert verify_reading_signature(doc["public key"], doc["signature"], message)


def test_the_openapi_example_reading_is_the_worked_example() -> None:
    assert ex.READING_IN == {
        "meter_serial": ex.EXAMPLE_SERIAL,
        "kwh_amount": ex.EXAMPLE_KWH,
        "reading_timestamp": ex.EXAMPLE_TIMESTAMP,
        "meter_signature": ex.EXAMPLE_SIGNATURE,
    }


@pytest.mark.parametrize(
    "code", sorted(STATUS_BY_CODE.keys() - {"database_not_migrated", "invalid_setting"})
)
def test_every_error_code_is_documented_with_its_status(code: str) -> None:
    rows = [
        line
        for line in DOC.read_text().splitlines()
        if f"`{code}`" in line and line.startswith("|")
    ]
    assert rows, f"{code} is not in the error table"
    assert rows[0].startswith(f"| {STATUS_BY_CODE[code]} |"), rows[0]
