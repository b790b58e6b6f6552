"""Exact energy and token arithmetic (CONTRACT "Money").

base_units = floor(kwh × ratio × 10^decimals), with Decimal and int only: the float
path `kwh * 1e9` turns 2.01 kWh into 2009999999 base units. kWh carry at most six
decimals; more is an error, never rounded.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal

KWH_SCALE = 6  # kWh are exact to the Wh/1000 (micro-kWh)
_MICRO = Decimal(10) ** KWH_SCALE
_STEP = Decimal(1).scaleb(-KWH_SCALE)
_MAX_MAGNITUDE = 15  # decimal exponent; amounts are far below 10^15 kWh
_EXACT = Context(prec=100)  # more digits than any u64 amount of base units has


class InvalidAmount(ValueError):
    """An energy amount that is not an exact, finite number with at most 6 decimals."""

    code = "invalid_format"


class TooManyDecimals(InvalidAmount):
    code = "too_many_decimals"


class NegativeAmount(InvalidAmount):
    """Well-formed but below zero: out of range rather than malformed."""

    code = "kwh_out_of_range"


# The one grammar for an amount written as text (CONTRACT "Money"): ASCII digits, an
# optional point and 1-6 decimals. No exponent, sign, spaces, underscores or other
# scripts' digits: Python's Decimal() would accept "1e2", " 2 ", "1_0" and "٥".
# The parts are separate so that a door with other rules (a sign, more decimals) reuses them.
_DECIMAL_TEXT = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
MAX_AMOUNT_TEXT = 40  # far above any amount; longer text is not worth parsing


class JsonNumber(Decimal):
    """A JSON number parsed exactly, keeping the literal as written (`"1e2"`, `"2.50"`).

    Used as `json.loads(..., parse_float=json_number)`: it is a Decimal everywhere, and
    the grammar can still be checked on the digits the sender wrote.
    """

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> JsonNumber:
        return json_number(literal)


_new_decimal = Decimal.__new__


def json_number(literal: str) -> JsonNumber:
    """`JsonNumber(literal)`, the json.loads hook: without a Python-level `__new__` and
    an instance dict, half the CPU (a GridTokenX frame carries about ten numbers)."""
    number = _new_decimal(JsonNumber, literal)
    number.literal = literal
    return number


def parse_decimal_text(
    text: str, *, max_decimals: int = KWH_SCALE, signed: bool = False
) -> Decimal:
    """An exact Decimal from `[-]digits[.digits]` in ASCII; InvalidAmount otherwise.

    More than `max_decimals` decimals is TooManyDecimals (never rounded, even when they
    are zeros: "1.0000000" is refused). A sign is accepted only when `signed`; callers
    judge the range themselves.
    """
    match = _DECIMAL_TEXT.fullmatch(text) if len(text) <= MAX_AMOUNT_TEXT else None
    if match is None:
        raise InvalidAmount(
            f"not a plain decimal number (digits, optionally . and up to {max_decimals} "
            f"decimals): {text[:MAX_AMOUNT_TEXT]!r}"
        )
    if match["sign"] and not signed:
        raise NegativeAmount(f"{text} is negative")
    if len(match["fraction"] or "") > max_decimals:
        raise TooManyDecimals(f"{text} has more than {max_decimals} decimals")
    return Decimal(text)


def parse_kwh(value: str | int | Decimal) -> Decimal:
    """An exact kWh Decimal from text in the grammar above, an int, or a Decimal.

    Floats are refused: a float has already lost the meter's digits (0.29 is
    0.28999999999999998), so callers parse JSON numbers with
    `parse_float=json_number` (a JsonNumber), whose literal is held to the same grammar as text.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount("kWh must be a decimal string or an exact number, not a float")
    if isinstance(value, JsonNumber):
        return parse_decimal_text(value.literal)
    if isinstance(value, str):
        return parse_decimal_text(value)
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidAmount(f"not a finite number: {value!r}")
    if value and value.adjusted() > _MAX_MAGNITUDE:
        # Before any arithmetic: Decimal("1e1000000") overflows the context on use.
        raise InvalidAmount(f"{value:.3e} is out of any range")
    if value != value.quantize(_STEP):
        raise TooManyDecimals(f"{value} has more than {KWH_SCALE} decimals")
    return value


def kwh_to_micro(kwh: Decimal) -> int:
    """Integer micro-kWh, the stored form; `kwh` must already be parsed (≤ 6 decimals)."""
    micro = kwh * _MICRO
    if micro != micro.to_integral_value():
        raise TooManyDecimals(f"{kwh} has more than {KWH_SCALE} decimals")
    return int(micro)


def micro_to_kwh(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-KWH_SCALE)


def kwh_to_base_units(kwh: Decimal, ratio: Decimal, decimals: int) -> int:
    """floor(kwh × ratio × 10^decimals), exactly; the one place tokens are computed."""
    if not 0 <= decimals <= 9:
        raise ValueError("decimals must be within 0..9")
    if isinstance(kwh, float) or isinstance(ratio, float):
        raise TypeError("kwh and ratio must be Decimal, never float")
    # As integer ratios the product is exact whatever its size; `//` is the single floor.
    kwh_num, kwh_den = Decimal(kwh).as_integer_ratio()
    ratio_num, ratio_den = Decimal(ratio).as_integer_ratio()
    return (kwh_num * ratio_num * 10**decimals) // (kwh_den * ratio_den)


def micro_to_base_units(kwh_micro: int, ratio: Decimal, decimals: int) -> int:
    return kwh_to_base_units(micro_to_kwh(kwh_micro), ratio, decimals)


def format_kwh(kwh: Decimal | int, *, micro: bool = False) -> str:
    """A kWh amount with exactly six decimals, the canonical form ("3.412500")."""
    amount = micro_to_kwh(kwh) if micro else Decimal(kwh)
    return f"{amount.quantize(_STEP):f}"


def format_tokens(base_units: int, decimals: int, *, trim: bool = True) -> str:
    """Base units as a GRX amount string; `trim` drops trailing zeros ("10.5", "2")."""
    amount = Decimal(base_units).scaleb(-decimals)
    # normalize() drops trailing zeros, exactly within _EXACT's digits; ":f" writes 1E+2
    # as "100".
    return f"{amount.normalize(_EXACT) if trim else amount:f}"


def tokens_for_display(kwh: Decimal, ratio: Decimal, decimals: int) -> str:
    """What a reading of `kwh` becomes, for a ratio preview ("10.5 kWh -> 10.5 GRX")."""
    return format_tokens(kwh_to_base_units(kwh, ratio, decimals), decimals)
