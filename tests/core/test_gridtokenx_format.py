"""The bytes GridTokenX's Rust bridge writes, and keys as their meters carry them."""

from __future__ import annotations

import pytest

from core.meters import InvalidMeter, parse_public_key
from core.readings.errors import ReadingRejected
from core.readings.gridtokenx import sample_fields
from core.readings.json_text import parse_json
from core.readings.rust_format import rust_f64_display, ryu_f64, serde_json_bytes
from core.units import JsonNumber
from tests.factories import keypair_for


# What Rust prints (`f64::to_string()`, `format!("{}", x)`), as documented behaviour:
# shortest round-trip digits, never an exponent.
@pytest.mark.parametrize(
    ("value", "rust"),
    [
        (1.0, "1"),
        (10.0, "10"),
        (0.1, "0.1"),
        (-0.5, "-0.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.00001, "0.00001"),
        (1e-7, "0.0000001"),
        (1e21, "1000000000000000000000"),
        (0.1 + 0.2, "0.30000000000000004"),
        (123.456789, "123.456789"),
        (-0.012345, "-0.012345"),
        (0.0001, "0.0001"),
        (1e15, "1000000000000000"),
        (1e16, "10000000000000000"),
        (-12345.0, "-12345"),
    ],
)
def test_rust_display(value: float, rust: str) -> None:
    assert rust_f64_display(value) == rust


# What serde_json writes for an f64 (ryu): always a point or an exponent.
@pytest.mark.parametrize(
    ("value", "ryu"),
    [
        (1.0, "1.0"),
        (500.0, "500.0"),
        (0.001, "0.001"),
        (0.00001, "0.00001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (-720.0, "-720.0"),
        (0.0, "0.0"),
    ],
)
def test_ryu(value: float, ryu: str) -> None:
    assert ryu_f64(value) == ryu


def test_serde_json_sorts_keys_and_keeps_integers() -> None:
    value = {"b": JsonNumber("1.0"), "a": 2, "c": ["é", None, True], "1.1.2.8.0.255": 0.5}
    assert (
        serde_json_bytes(value)
        == '{"1.1.2.8.0.255":0.5,"a":2,"b":1.0,"c":["é",null,true]}'.encode()
    )


def test_a_public_key_as_base58_or_64_hex() -> None:
    pubkey = keypair_for("m").pubkey()
    assert parse_public_key(str(pubkey)) == str(pubkey)
    assert parse_public_key(bytes(pubkey).hex()) == str(pubkey)
    assert parse_public_key(bytes(pubkey).hex().upper()) == str(pubkey)
    for bad in ("ab" * 31, "zz" * 32, "0OIl", ""):
        with pytest.raises(InvalidMeter) as caught:
            parse_public_key(bad)
        assert caught.value.field == "public_key"


def _fields(**registers: str) -> dict:
    """A payload's energy registers as JSON literals, parsed as every door parses them."""
    names = {
        "imported": "1.1.1.8.0.255",
        "exported": "1.1.2.8.0.255",
        "generated": "energy_generated",
        "consumed": "energy_consumed",
    }
    text = ", ".join(f'"{names[k]}": {v}' for k, v in registers.items())
    return parse_json(("{" + text + "}").encode())


def test_energy_registers_to_micro_kwh_exactly_however_written() -> None:
    fields = sample_fields(
        _fields(
            imported="1234567890123.456", exported="12.500", generated="12", consumed="0.000001"
        )
    )
    assert (fields.import_micro, fields.export_micro) == (1_234_567_890_123_456, 12_500)
    assert (fields.generated_micro, fields.consumed_micro) == (12_000_000, 1)
    fields = sample_fields(_fields(imported="0.0", exported="1.25"))
    assert (fields.import_micro, fields.export_micro) == (0, 1_250)
    assert fields.generated_micro == 1_250 and fields.consumed_micro == 0  # from the Wh


@pytest.mark.parametrize(
    ("registers", "code", "field"),
    [
        ({"imported": "1.0001"}, "too_many_decimals", "payload.1.1.1.8.0.255"),
        ({"exported": "1e3"}, "invalid_format", "payload.1.1.2.8.0.255"),
        ({"generated": "-0.5"}, "invalid_format", "payload.energy_generated"),
        ({"consumed": "0.0000001"}, "too_many_decimals", "payload.energy_consumed"),
        ({"imported": "12345678901234"}, "invalid_format", "payload.1.1.1.8.0.255"),
        ({"generated": "true"}, "invalid_format", "payload.energy_generated"),
    ],
)
def test_energy_registers_refused_as_before(registers: dict, code: str, field: str) -> None:
    with pytest.raises(ReadingRejected) as refused:
        sample_fields(_fields(**registers))
    assert (refused.value.code, refused.value.field) == (code, field)
