"""Exact money at the edges: every expected figure comes from integer arithmetic.

kWh × ratio × 10^d is checked against integers: a kWh amount is m micro-kWh,
a ratio is r nano-units, so the exact base units are m·r·10^d / 10^15 and the
floor is integer division. The hard region is a product whose fraction lies
just below an integer with many significant digits: any rounding there (a
lower Decimal precision, a float) crosses the integer and mints one unit too many.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.units import (
    InvalidAmount,
    TooManyDecimals,
    format_kwh,
    format_tokens,
    kwh_to_base_units,
    kwh_to_micro,
    micro_to_base_units,
    micro_to_kwh,
    parse_kwh,
    tokens_for_display,
)

SCALE = 10**15  # 10^6 (micro-kWh) × 10^9 (nano-ratio)

# core.units: the message for text outside the one amount grammar.
GRAMMAR = "not a plain decimal number (digits, optionally . and up to 6 decimals)"


def exact_floor(micro: int, nano_ratio: int, decimals: int) -> int:
    """The oracle: floor(m/10^6 × r/10^9 × 10^d) with integers only."""
    return micro * nano_ratio * 10**decimals // SCALE


def kwh_text(micro: int) -> str:
    """m micro-kWh as a decimal string, built from the integer's digits."""
    whole, fraction = divmod(micro, 10**6)
    return f"{whole}.{fraction:06d}"


def ratio_text(nano: int) -> str:
    whole, fraction = divmod(nano, 10**9)
    return f"{whole}.{fraction:09d}"


@pytest.mark.parametrize(
    ("kwh", "ratio", "decimals", "expected"),
    [
        # 95402815 × 787404463729 = 75120602383311997135 → 75120602383311.997135 base units.
        ("95.402815", "787.404463729", 9, 75_120_602_383_311),
        ("95.402815", "787.404463729", 6, 75_120_602_383),  # ...383.311997135
        ("95.402815", "787.404463729", 0, 75_120),
        ("99999.999999", "999.999999999", 9, 99_999_999_998_900_000),
        ("0.000001", "0.000000001", 9, 0),  # 10^-6 × 10^-9 × 10^9 = 10^-6
        ("0.000001", "1000", 9, 1_000_000),
        ("3.412500", "1.5", 9, 5_118_750_000),
        ("2.01", "1", 9, 2_010_000_000),
    ],
)
def test_worked_cases(kwh: str, ratio: str, decimals: int, expected: int) -> None:
    whole, fraction = kwh.split(".")
    micro = int(whole) * 10**6 + int(fraction.ljust(6, "0"))
    assert kwh_to_base_units(Decimal(kwh), Decimal(ratio), decimals) == expected
    assert micro_to_base_units(micro, Decimal(ratio), decimals) == expected


def test_the_worked_case_really_is_one_unit_from_an_integer() -> None:
    # The table's first case means something only if rounding would cross the integer.
    product = 95_402_815 * 787_404_463_729
    assert product % 10**6 == 997_135  # fraction .997135: 15 significant digits round up
    assert int(95.402815 * 787.404463729 * 1e9) != product // 10**6


@st.composite
def just_below_an_integer(draw) -> tuple[int, int, int]:
    """(micro-kWh, nano-ratio, decimals) whose exact base units are n + 1 - k/D, k small.

    m is drawn coprime to 10, so r ≡ -k·m⁻¹ (mod D) puts the product k/D below
    the next integer; r's higher digits are free, which spreads it over the range.
    """
    decimals = draw(st.integers(min_value=0, max_value=9))
    modulus = 10 ** (15 - decimals)  # D: one base unit in (micro × nano) units
    # Mostly 18-digit kWh (just under the 10^12 kWh parse bound), so that the product
    # has 28-30 significant digits: beyond Decimal's default precision of 28.
    digits = st.one_of(
        st.integers(min_value=10**17, max_value=10**18 - 1),
        st.integers(min_value=10**4, max_value=10**17),
    )
    micro = draw(digits.filter(lambda m: m % 2 and m % 5))
    gap = draw(st.integers(min_value=1, max_value=9))
    low = (-gap * pow(micro, -1, modulus)) % modulus
    top = max(0, (10**12 - low) // modulus)  # ratio up to 1000, as configurable
    high = draw(st.one_of(st.integers(min_value=top // 10, max_value=top), st.integers(0, top)))
    nano = low + high * modulus
    return micro, max(nano, 1), decimals


@settings(max_examples=300, derandomize=True)
@given(just_below_an_integer())
@example((95_402_815, 787_404_463_729, 9))
def test_hard_region_is_floored_exactly(case: tuple[int, int, int]) -> None:
    micro, nano, decimals = case
    kwh = Decimal(kwh_text(micro))
    ratio = Decimal(ratio_text(nano))
    assert kwh_to_base_units(kwh, ratio, decimals) == exact_floor(micro, nano, decimals)


@settings(max_examples=300, derandomize=True)
@given(
    st.integers(min_value=1, max_value=10**18 - 1),  # kWh below 10^12 (the parse bound)
    st.integers(min_value=1, max_value=10**12),  # ratio up to 1000 with 9 decimals
    st.integers(min_value=0, max_value=9),
)
def test_many_digits_in_both_are_floored_exactly(micro: int, nano: int, decimals: int) -> None:
    kwh = Decimal(kwh_text(micro))
    ratio = Decimal(ratio_text(nano))
    assert kwh_to_base_units(kwh, ratio, decimals) == exact_floor(micro, nano, decimals)
    assert micro_to_base_units(micro, ratio, decimals) == exact_floor(micro, nano, decimals)


@pytest.mark.parametrize("decimals", [-1, 10])
def test_decimals_outside_zero_to_nine_are_refused(decimals: int) -> None:
    with pytest.raises(ValueError, match=r"^decimals must be within 0\.\.9$"):
        kwh_to_base_units(Decimal(1), Decimal(1), decimals)


@pytest.mark.parametrize("decimals", [0, 9])
def test_zero_and_nine_decimals_are_the_bounds(decimals: int) -> None:
    assert kwh_to_base_units(Decimal(1), Decimal(1), decimals) == 10**decimals


@pytest.mark.parametrize(("kwh", "ratio"), [(2.01, Decimal(1)), (Decimal(1), 1.5)])
def test_a_float_kwh_or_ratio_is_refused(kwh, ratio) -> None:
    with pytest.raises(TypeError, match=r"^kwh and ratio must be Decimal, never float$"):
        kwh_to_base_units(kwh, ratio, 9)


@pytest.mark.parametrize(
    ("text", "micro"),
    [("1.000001", 1_000_001), ("0.000001", 1), ("100000", 100_000_000_000), ("-2.5", -2_500_000)],
)
def test_kwh_to_micro_is_exact(text: str, micro: int) -> None:
    converted = kwh_to_micro(Decimal(text))
    assert converted == micro and type(converted) is int


@pytest.mark.parametrize("text", ["1.0000001", "0.0000005", "99999.9999999"])
def test_seven_decimals_never_reach_the_stored_micro(text: str) -> None:
    with pytest.raises(TooManyDecimals) as caught:
        kwh_to_micro(Decimal(text))
    assert str(caught.value) == f"{Decimal(text)} has more than 6 decimals"


def test_micro_to_kwh_is_exact() -> None:
    assert micro_to_kwh(1) == Decimal("0.000001")
    assert micro_to_kwh(123_456_789) == Decimal("123.456789")
    assert str(micro_to_kwh(3_412_500)) == "3.412500"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "kWh must be a decimal string or an exact number, not a float"),
        (True, "kWh must be a decimal string or an exact number, not a float"),
        ("abc", f"{GRAMMAR}: 'abc'"),
        ("NaN", f"{GRAMMAR}: 'NaN'"),
        (
            "-Infinity",
            f"{GRAMMAR}: '-Infinity'",
        ),
        (
            " 2.5\t",
            f"{GRAMMAR}: ' 2.5\\t'",
        ),
        (
            "-1e30",
            f"{GRAMMAR}: '-1e30'",
        ),
        (Decimal("NaN"), "not a finite number: Decimal('NaN')"),
        (Decimal("-1e30"), "-1.000e+30 is out of any range"),
    ],
)
def test_invalid_amounts_say_why(value: object, message: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_kwh(value)  # type: ignore[arg-type]
    assert str(caught.value) == message and caught.value.code == "invalid_format"


def test_too_many_decimals_names_the_value_and_its_code() -> None:
    with pytest.raises(TooManyDecimals) as caught:
        parse_kwh("1.0000001")
    assert str(caught.value) == "1.0000001 has more than 6 decimals"
    assert caught.value.code == "too_many_decimals"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.5", Decimal("2.5")),
        (7, Decimal(7)),
        (Decimal("1.10"), Decimal("1.1")),
        (Decimal("-1.5"), Decimal("-1.5")),
    ],
)
def test_parse_kwh_accepts_strings_ints_and_decimals(value, expected: Decimal) -> None:
    assert parse_kwh(value) == expected


@pytest.mark.parametrize(
    ("base_units", "decimals", "trimmed", "full"),
    [
        (1, 0, "1", "1"),
        (1_000, 0, "1000", "1000"),  # no decimal point: trailing zeros are digits
        (12_345, 2, "123.45", "123.45"),
        (100, 2, "1", "1.00"),
        (120, 2, "1.2", "1.20"),
        (5, 6, "0.000005", "0.000005"),
        (10_500_000, 6, "10.5", "10.500000"),
        (0, 6, "0", "0.000000"),
    ],
)
def test_token_display_for_decimals_other_than_nine(
    base_units: int, decimals: int, trimmed: str, full: str
) -> None:
    assert format_tokens(base_units, decimals) == trimmed
    assert format_tokens(base_units, decimals, trim=False) == full


def test_tokens_for_display_applies_ratio_and_decimals() -> None:
    assert tokens_for_display(Decimal("95.402815"), Decimal("787.404463729"), 6) == "75120.602383"
    assert tokens_for_display(Decimal("1.5"), Decimal("2"), 0) == "3"
    assert tokens_for_display(Decimal("0.333333"), Decimal("1"), 2) == "0.33"


@pytest.mark.parametrize(
    ("value", "micro", "text"),
    [
        (Decimal("3.4125"), False, "3.412500"),
        (1, True, "0.000001"),
        (Decimal(100000), False, "100000.000000"),
    ],
)
def test_format_kwh_always_has_six_decimals(value, micro: bool, text: str) -> None:
    assert format_kwh(value, micro=micro) == text
