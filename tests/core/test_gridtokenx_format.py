"""The bytes GridTokenX's Rust bridge writes, and keys as their meters carry them."""

from __future__ import annotations

import pytest

from core.meters import InvalidMeter, parse_public_key
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
