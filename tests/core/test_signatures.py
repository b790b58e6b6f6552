"""The canonical signed message and its check, against oracles that share no code with them.

unix_ms is recomputed from the timestamp's text by calendar arithmetic (days
from the civil date, minus the offset), never through datetime or float
seconds. Signatures are made by a raw solders Keypair over message bytes
written out by hand, not by the factories (which call reading_message).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.signature import Signature

from core.readings.rules import parse_timestamp
from core.signatures import (
    MESSAGE_PREFIX,
    parse_pubkey,
    parse_signature,
    reading_message,
    unix_ms,
    verify_reading_signature,
)

KEY = Keypair.from_seed(bytes(range(32)))
OTHER = Keypair.from_seed(bytes(range(1, 33)))

_TEXT = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?(Z|([+-])(\d\d):(\d\d))"
)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (integer arithmetic only)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def expected_unix_ms(text: str) -> int:
    """The oracle: milliseconds since the epoch read off an RFC 3339 string."""
    match = _TEXT.fullmatch(text)
    assert match, text
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    millis = int((match.group(7) or "0").ljust(3, "0"))
    offset = 0
    if match.group(8) != "Z":
        sign = 1 if match.group(9) == "+" else -1
        offset = sign * (int(match.group(10)) * 60 + int(match.group(11)))
    seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return (seconds - offset * 60) * 1000 + millis


def test_the_oracle_knows_the_epoch_and_a_leap_day() -> None:
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 3, 1) == 11_017
    assert days_from_civil(1969, 12, 31) == -1
    assert expected_unix_ms("2038-01-19T03:14:08Z") == 2**31 * 1000


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2026-11-20T11:55:00.123Z", 1_795_175_700_123),
        ("2026-11-20T17:25:00.123+05:30", 1_795_175_700_123),  # same instant, India
        ("2026-11-20T06:55:00.123-05:00", 1_795_175_700_123),  # same instant, New York
        ("2026-11-21T01:40:00.123+13:45", 1_795_175_700_123),  # Chatham daylight time
        ("2038-01-19T03:14:07.999Z", 2_147_483_647_999),  # the last 32-bit second
        ("2038-01-19T03:14:08Z", 2_147_483_648_000),  # and the first past it
        ("2099-12-31T23:59:59.999+00:00", 4_102_444_799_999),
        ("2100-03-01T00:00:00.5-00:30", 4_107_544_200_500),
        ("2024-02-29T23:59:59.9Z", 1_709_251_199_900),
    ],
)
def test_unix_ms_of_worked_instants(text: str, millis: int) -> None:
    assert expected_unix_ms(text) == millis  # the table agrees with the oracle
    converted = unix_ms(parse_timestamp(text))
    assert converted == millis and type(converted) is int


def test_sub_millisecond_instants_are_floored_not_rounded() -> None:
    # parse_timestamp refuses sub-ms digits, but unix_ms must floor whatever it is given.
    at = datetime(2026, 11, 20, 11, 55, 0, 123_999, tzinfo=UTC)
    assert unix_ms(at) == 1_795_175_700_123
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)
    assert unix_ms(before_epoch) == -1
    assert type(unix_ms(at)) is int


@st.composite
def rfc3339_instants(draw) -> str:
    """Any millisecond from 1970 to 2100 with any whole-minute offset within ±23:59."""
    year = draw(st.integers(1970, 2100))
    month = draw(st.integers(1, 12))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    length = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    day = draw(st.integers(1, length))
    hour, minute, second = (
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )
    millis = draw(st.integers(0, 999))
    offset = draw(st.one_of(st.just("Z"), st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    if offset != "Z":
        sign = "-" if offset < 0 else "+"
        offset = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    clock = f"{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{clock}{offset}"


@settings(max_examples=400, derandomize=True)
@given(rfc3339_instants())
def test_unix_ms_matches_calendar_arithmetic_for_any_instant(text: str) -> None:
    millis = expected_unix_ms(text)
    assert unix_ms(parse_timestamp(text)) == millis
    message = reading_message("M-1", parse_timestamp(text), Decimal("1.5"))
    assert message == f"gridtokenx-reading:v1:M-1:{millis}:1.500000".encode()


def test_float_seconds_would_be_wrong_so_the_property_means_something() -> None:
    # An instant past 2038 where timestamp() * 1000 in float loses the last millisecond.
    text = "2039-03-08T19:46:13.411Z"
    at = parse_timestamp(text)
    assert int(at.timestamp() * 1000) != expected_unix_ms(text)
    assert unix_ms(at) == expected_unix_ms(text)


@pytest.mark.parametrize(
    ("serial", "at", "kwh", "expected"),
    [
        (
            "M-1",
            datetime(
                2026, 11, 20, 17, 25, 0, 250_000, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            Decimal("3.4125"),
            b"gridtokenx-reading:v1:M-1:1795175700250:3.412500",
        ),
        (
            "SM-0042",
            datetime(2040, 2, 29, 0, 0, tzinfo=timezone(timedelta(hours=-8))),
            Decimal("100000"),
            b"gridtokenx-reading:v1:SM-0042:2214115200000:100000.000000",
        ),
        (
            "A:B",
            datetime(1970, 1, 1, tzinfo=UTC),
            Decimal("0.000001"),
            b"gridtokenx-reading:v1:A:B:0:0.000001",
        ),
    ],
)
def test_the_canonical_message_bytes(serial: str, at: datetime, kwh: Decimal, expected: bytes):
    assert MESSAGE_PREFIX == "gridtokenx-reading:v1"
    assert reading_message(serial, at, kwh) == expected


HAND_BUILT = b"gridtokenx-reading:v1:M-1:1795175700123:3.412500"


def test_a_signature_over_hand_built_bytes_verifies() -> None:
    signature = KEY.sign_message(HAND_BUILT)
    at = parse_timestamp("2026-11-20T17:25:00.123+05:30")
    assert reading_message("M-1", at, Decimal("3.4125")) == HAND_BUILT
    assert verify_reading_signature(KEY.pubkey(), signature, HAND_BUILT) is True
    assert verify_reading_signature(str(KEY.pubkey()), str(signature), HAND_BUILT) is True


@pytest.mark.parametrize(
    "case",
    ["other key", "other message", "flipped bit", "other meter", "one ms later"],
)
def test_a_wrong_signature_never_verifies(case: str) -> None:
    signature = KEY.sign_message(HAND_BUILT)
    key, message = KEY.pubkey(), HAND_BUILT
    if case == "other key":
        key = OTHER.pubkey()
    elif case == "other message":
        message = HAND_BUILT.replace(b"3.412500", b"3.412501")
    elif case == "flipped bit":
        raw = bytearray(bytes(signature))
        raw[17] ^= 0x01
        signature = Signature.from_bytes(bytes(raw))
    elif case == "other meter":
        message = HAND_BUILT.replace(b"M-1", b"M-2")
    else:
        message = HAND_BUILT.replace(b"700123", b"700124")
    assert verify_reading_signature(key, signature, message) is False
    assert verify_reading_signature(str(key), str(signature), message) is False


def test_garbage_keys_and_signatures_are_false_not_errors() -> None:
    signature = str(KEY.sign_message(HAND_BUILT))
    assert verify_reading_signature("not-a-key", signature, HAND_BUILT) is False
    assert verify_reading_signature(str(KEY.pubkey()), "not-a-signature", HAND_BUILT) is False
    assert parse_signature("0OIl") is None and parse_signature("abc") is None
    assert parse_pubkey("0OIl") is None
    assert parse_pubkey(str(KEY.pubkey())) == KEY.pubkey()
    assert parse_signature(signature) == Signature.from_string(signature)
