"""core.units at the bounds the other unit tests do not reach: the magnitude limit,
the largest u64 amount, and what each refusal says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.units import (
    InvalidAmount,
    NegativeAmount,
    TooManyDecimals,
    format_tokens,
    parse_decimal_text,
    parse_kwh,
)


def test_the_magnitude_bound_is_exponent_15_inclusive() -> None:
    assert parse_kwh(Decimal("1E15")) == Decimal(10**15)
    assert parse_kwh(Decimal("9.99999E15")) == Decimal(9_999_990_000_000_000)
    with pytest.raises(InvalidAmount, match="out of any range"):
        parse_kwh(Decimal("1E16"))


def test_token_text_of_the_largest_u64_amount_is_exact() -> None:
    assert format_tokens(2**64 - 1, 9) == "18446744073.709551615"
    assert format_tokens(2**64 - 1, 0) == "18446744073709551615"
    assert format_tokens(10**19, 9) == "10000000000"


def test_refusals_say_what_was_wrong() -> None:
    with pytest.raises(NegativeAmount) as caught:
        parse_decimal_text("-1.5")
    assert str(caught.value) == "-1.5 is negative"
    with pytest.raises(TooManyDecimals) as caught:
        parse_kwh(Decimal("1.0000001"))
    assert str(caught.value) == "1.0000001 has more than 6 decimals"
