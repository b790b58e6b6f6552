"""Exact money: kWh -> base units never goes through a float."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.units import (
    InvalidAmount,
    JsonNumber,
    NegativeAmount,
    TooManyDecimals,
    format_kwh,
    format_tokens,
    json_number,
    kwh_to_base_units,
    kwh_to_micro,
    micro_to_kwh,
    parse_decimal_text,
    parse_kwh,
    tokens_for_display,
)

ONE = Decimal("1.0")

# Amounts 0.000001 ..100 kWh with at most six decimals, built from integers.
kwh_amounts = st.integers(min_value=1, max_value=100_000_000).map(lambda micro: micro_to_kwh(micro))
ratios = st.integers(min_value=1, max_value=1_000_000_000_000).map(
    lambda nano: Decimal(nano).scaleb(-9)
)


@pytest.mark.parametrize(
    ("kwh", "expected"),
    [
        ("2.01", 2_010_000_000),  # float: 2009999999
        ("0.29", 290_000_000),  # float: 289999999
        ("0.000001", 1_000),
        ("100", 100_000_000_000),
        ("4.35", 4_350_000_000),
        ("1.15", 1_150_000_000),
    ],
)
def test_known_float_traps_are_exact(kwh: str, expected: int) -> None:
    assert kwh_to_base_units(parse_kwh(kwh), ONE, 9) == expected


def test_float_path_really_is_wrong_so_the_cases_above_mean_something() -> None:
    assert int(2.01 * 1e9) == 2_009_999_999


@given(kwh_amounts)
def test_ratio_one_nine_decimals_is_micro_times_1000(kwh: Decimal) -> None:
    assert kwh_to_base_units(kwh, ONE, 9) == kwh_to_micro(kwh) * 1000


@given(kwh_amounts, ratios, st.integers(min_value=0, max_value=9))
def test_base_units_is_the_exact_floor(kwh: Decimal, ratio: Decimal, decimals: int) -> None:
    units = kwh_to_base_units(kwh, ratio, decimals)
    # Exact rational check with integers only: units <= kwh*ratio*10^d < units + 1.
    numerator = kwh_to_micro(kwh) * int(ratio.scaleb(9)) * 10**decimals
    denominator = 10**6 * 10**9
    assert units * denominator <= numerator < (units + 1) * denominator


@given(kwh_amounts)
def test_kwh_round_trips_through_micro_and_canonical_text(kwh: Decimal) -> None:
    assert micro_to_kwh(kwh_to_micro(kwh)) == kwh
    assert parse_kwh(format_kwh(kwh)) == kwh
    assert len(format_kwh(kwh).split(".")[1]) == 6


@pytest.mark.parametrize("text", ["1.0000001", "0.1234567", "2.0100001"])
def test_more_than_six_decimals_is_rejected_not_rounded(text: str) -> None:
    with pytest.raises(TooManyDecimals):
        parse_kwh(text)


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "1e", 1.5, True])
def test_not_a_number_is_invalid(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_kwh(value)  # type: ignore[arg-type]


def test_trailing_zeros_within_six_decimals_are_the_same_amount() -> None:
    assert parse_kwh("3.412500") == Decimal("3.4125")
    assert parse_kwh("007") == Decimal(7)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("٥", InvalidAmount),  # Arabic-Indic five: Decimal() reads it as 5
        ("２.５", InvalidAmount),  # fullwidth digits: 2.5
        ("1_0", InvalidAmount),  # an underscore: 10
        ("\t2\n", InvalidAmount),  # surrounding whitespace: 2
        (" 7 ", InvalidAmount),
        ("1e2", InvalidAmount),  # an exponent: 100
        ("1e1000000", InvalidAmount),  # once a 500 decimal.Overflow
        ("1.0000000", TooManyDecimals),  # seven decimals, even zeros: once stored as 1
        ("+1", InvalidAmount),
        (".5", InvalidAmount),
        ("5.", InvalidAmount),
        ("9" * 41, InvalidAmount),
    ],
)
def test_text_outside_the_one_grammar_is_refused(text: str, error: type) -> None:
    with pytest.raises(error):
        parse_kwh(text)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("2.01", Decimal("2.01")), ("2.50", Decimal("2.5")), ("100", Decimal(100))],
)
def test_a_json_number_is_held_to_the_grammar_as_written(literal: str, expected: Decimal) -> None:
    number = json.loads(literal, parse_float=JsonNumber)
    assert parse_kwh(number) == expected


def test_a_json_number_is_the_decimal_its_literal_writes() -> None:
    """The hook's value, not only its literal: a DLMS frame's registers are read as numbers."""
    number = json_number("2.50")
    assert isinstance(number, Decimal) and number.literal == "2.50"
    assert number.as_tuple() == (0, (2, 5, 0), -2)  # digits and exponent as written
    frame = json.loads('{"kwh": -0.125, "v": 229.9}', parse_float=json_number)
    assert (frame["kwh"], frame["v"]) == (Decimal("-0.125"), Decimal("229.9"))


@pytest.mark.parametrize(("literal", "error"), [("1e2", InvalidAmount), ("1.5E1", InvalidAmount),
                                                 ("1.0000000", TooManyDecimals)])  # fmt: skip
def test_a_json_number_with_an_exponent_or_seven_decimals_is_refused(
    literal: str, error: type
) -> None:
    with pytest.raises(error):
        parse_kwh(json.loads(f"[{literal}]", parse_float=JsonNumber)[0])


def test_a_signed_door_reuses_the_grammar_with_a_sign() -> None:
    assert parse_decimal_text("-1.25", signed=True) == Decimal("-1.25")
    with pytest.raises(NegativeAmount):
        parse_decimal_text("-1.25")
    with pytest.raises(TooManyDecimals):
        parse_decimal_text("0.1234", max_decimals=3, signed=True)


def test_display_strings() -> None:
    assert format_kwh(Decimal("3.4125")) == "3.412500"
    assert format_kwh(3_412_500, micro=True) == "3.412500"
    assert format_tokens(10_500_000_000, 9) == "10.5"
    assert format_tokens(2_000_000_000, 9) == "2"
    assert format_tokens(1, 9) == "0.000000001"
    assert format_tokens(10_500_000_000, 9, trim=False) == "10.500000000"
    assert tokens_for_display(Decimal("10.5"), Decimal("1.0"), 9) == "10.5"
    assert tokens_for_display(Decimal("10.5"), Decimal("2.5"), 9) == "26.25"


def test_floats_never_reach_the_arithmetic() -> None:
    with pytest.raises(TypeError):
        kwh_to_base_units(2.01, ONE, 9)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kwh_to_base_units(Decimal(1), ONE, 10)
