"""Numbers and JSON written byte for byte as GridTokenX's Rust bridge writes them.

Their meters sign text the bridge rebuilds with Rust: the kWh as `f64::to_string()`
and, as a fallback, the payload as `serde_json::to_vec` (keys sorted, compact,
floats through ryu). To verify those signatures we must produce the same bytes.
Floats appear here only because the signed text is defined over an f64; no
amount is ever computed from them (core.units stays exact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.units import JsonNumber

_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)


def _shortest(value: float) -> tuple[str, str, int]:
    """(sign, digits, exponent): value = sign digits × 10^exponent, digits shortest.

    Python's repr and Rust's formatters both print the shortest text that reads back
    as the same f64, so the digits agree; only the layout differs.
    """
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    return ("-" if sign else ""), "".join(map(str, digits)), exponent


def rust_f64_display(value: float) -> str:
    """`f64::to_string()`: shortest round-trip digits, never an exponent (`1`, `0.00001`)."""
    text = repr(value)
    if "e" not in text and "n" not in text:
        # Python's repr has the same shortest digits and, when it writes no exponent
        # (1e-4 <= |value| < 1e16, and zero), the same layout but for an integral
        # value's ".0" (every GridTokenX frame's kWh is signed in this form).
        return text[:-2] if text.endswith(".0") else text
    if value == 0:
        return "-0" if repr(value).startswith("-") else "0"
    sign, digits, exponent = _shortest(value)
    if exponent >= 0:
        return sign + digits + "0" * exponent
    point = len(digits) + exponent
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"


def ryu_f64(value: float) -> str:
    """How serde_json writes an f64 (ryu): `1.0`, `0.001`, `1e-7`, `1e16`."""
    if value == 0:
        return "-0.0" if repr(value).startswith("-") else "0.0"
    sign, digits, k = _shortest(value)
    length = len(digits)
    point = length + k
    if k >= 0 and point <= 16:
        return f"{sign}{digits}{'0' * k}.0"
    if 0 < point <= 16:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -5 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    mantissa = digits if length == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{point - 1}"


def json_f64(value: Any) -> float | None:
    """The f64 serde_json reads from a JSON number (or Rust's `str::parse` from text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, JsonNumber):
        return float(value.literal)
    if isinstance(value, int | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() == value else None
        except ValueError:
            return None
    return None


def serde_json_bytes(value: Any) -> bytes:
    """`serde_json::to_vec` of a parsed JSON value: sorted keys (BTreeMap), compact."""
    return _serde(value).encode("utf-8")


def _serde(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, JsonNumber | float):
        return ryu_f64(float(value.literal if isinstance(value, JsonNumber) else value))
    if isinstance(value, int):
        # serde keeps integers that fit u64 / i64 as integers, the rest become f64.
        return str(value) if _I64_MIN <= value <= _U64_MAX else ryu_f64(float(value))
    if isinstance(value, Decimal):
        return ryu_f64(float(value))
    if isinstance(value, Mapping):
        items = sorted(value.items())
        return "{" + ",".join(f"{_serde(k)}:{_serde(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_serde(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
