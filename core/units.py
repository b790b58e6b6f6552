"""Exact energy and token arithmetic (CONTRACT "Money").

base_units = floor(kwh × ratio × 10^decimals), with Decimal and int only: the float
path `kwh * 1e9` turns 2.01 kWh into 2009999999 base units. kWh carry at most six
decimals; more is an error, never rounded.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext

KWH_SCALE = 6  # kWh are exact to the Wh/1000 (micro-kWh)
_MICRO = Decimal(10) ** KWH_SCALE


class InvalidAmount(ValueError):
    """An energy amount that is not an exact, finite number with at most 6 decimals."""

    code = "invalid_format"


class TooManyDecimals(InvalidAmount):
    code = "too_many_decimals"


def parse_kwh(value: str | int | Decimal) -> Decimal:
    """An exact kWh Decimal from a string, int or Decimal; floats are refused.

    A float has already lost the meter's digits (0.29 is 0.28999999999999998),
    so callers parse JSON numbers with `parse_float=Decimal` and pass those.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount("kWh must be a decimal string or an exact number, not a float")
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount(f"not a number: {value!r}") from exc
    if not amount.is_finite():
        raise InvalidAmount(f"not a finite number: {value!r}")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -KWH_SCALE:
        raise TooManyDecimals(f"{value} has more than {KWH_SCALE} decimals")
    return amount


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
    with localcontext() as context:
        # Enough digits that the product is exact before the single floor at the end.
        context.prec = 80
        product = Decimal(kwh) * Decimal(ratio) * (Decimal(10) ** decimals)
        return int(product.to_integral_value(rounding=ROUND_FLOOR))


def micro_to_base_units(kwh_micro: int, ratio: Decimal, decimals: int) -> int:
    return kwh_to_base_units(micro_to_kwh(kwh_micro), ratio, decimals)


def format_kwh(kwh: Decimal | int, *, micro: bool = False) -> str:
    """A kWh amount with exactly six decimals, the canonical form ("3.412500")."""
    amount = micro_to_kwh(kwh) if micro else Decimal(kwh)
    return f"{amount.quantize(Decimal(1).scaleb(-KWH_SCALE)):f}"


def format_tokens(base_units: int, decimals: int, *, trim: bool = True) -> str:
    """Base units as a GRX amount string; `trim` drops trailing zeros ("10.5", "2")."""
    text = f"{Decimal(base_units).scaleb(-decimals):f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def tokens_for_display(kwh: Decimal, ratio: Decimal, decimals: int) -> str:
    """What a reading of `kwh` becomes, for a ratio preview ("10.5 kWh -> 10.5 GRX")."""
    return format_tokens(kwh_to_base_units(kwh, ratio, decimals), decimals)
