"""The reading rules at their edges: lengths, absurd amounts, every message naming its field.

A meter that is refused must learn which field and why (CONTRACT "Errors"), so
each refusal is checked for its class, its `field` and a message that starts
with that field. Signatures here are made by a raw Keypair over bytes written
out by hand, so a check that verifies nothing (or the wrong bytes) fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from solders.keypair import Keypair

from core.config import Settings, TokenizationConfig
from core.db.models import ReadingStatus
from core.readings import (
    ForeignMeter,
    InvalidFormat,
    InvalidSignature,
    KwhOutOfRange,
    ReadingRejected,
    ReadingTooOld,
    TimestampInFuture,
    TooManyDecimals,
)
from core.readings.rules import check_submission, parse_amount, parse_submission, parse_timestamp

KEY = Keypair.from_seed(b"\x07" * 32)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# 2026-11-20T11:55:00.123Z, written in India's offset; signed over its UTC milliseconds.
AT_TEXT = "2026-11-20T17:25:00.123+05:30"
MESSAGE = b"gridtokenx-reading:v1:M-1:1795175700123:3.412500"

# core.units: the message for text outside the one amount grammar.
GRAMMAR = "not a plain decimal number (digits, optionally . and up to 6 decimals)"


def body(**over: object) -> dict[str, object]:
    signed = {
        "meter_serial": "M-1",
        "kwh_amount": "3.4125",
        "reading_timestamp": AT_TEXT,
        "meter_signature": str(KEY.sign_message(MESSAGE)),
    }
    return {**signed, **over}


@pytest.fixture
def config(make_settings: Callable[..., Settings]) -> TokenizationConfig:
    return make_settings(TOKENIZATION_REVIEW_THRESHOLD_KWH="50").tokenization


def check(raw: object, config: TokenizationConfig, now: datetime = NOW):
    return check_submission(
        parse_submission(raw), meter_serial="M-1", public_key=KEY.pubkey(), config=config, now=now
    )


def refused(raw: object, config: TokenizationConfig, error: type[ReadingRejected], field: str):
    with pytest.raises(error) as caught:
        check(raw, config)
    assert caught.type is error and caught.value.field == field
    assert str(caught.value).startswith(field), str(caught.value)
    return str(caught.value)


def test_a_hand_signed_reading_with_an_offset_passes_with_every_field(config) -> None:
    checked = check(body(), config)
    assert checked.kwh == Decimal("3.4125")
    assert checked.kwh_micro == 3_412_500
    assert checked.reading_timestamp == datetime(2026, 11, 20, 11, 55, 0, 123_000, tzinfo=UTC)
    assert checked.signature == str(KEY.sign_message(MESSAGE))
    assert checked.status is ReadingStatus.PENDING


def test_a_signature_over_the_local_time_as_if_utc_is_refused(config) -> None:
    # What a server that dropped the offset would have verified: 17:25 read as UTC.
    local_as_utc = b"gridtokenx-reading:v1:M-1:1795195500123:3.412500"
    message = refused(
        body(meter_signature=str(KEY.sign_message(local_as_utc))),
        config,
        InvalidSignature,
        "meter_signature",
    )
    assert repr(MESSAGE.decode()) in message  # the meter is told which bytes were checked


def test_another_key_is_refused_and_the_message_names_the_bytes(config) -> None:
    other = Keypair.from_seed(b"\x08" * 32)
    message = refused(
        body(meter_signature=str(other.sign_message(MESSAGE))),
        config,
        InvalidSignature,
        "meter_signature",
    )
    assert message == (
        f"meter_signature does not verify against this meter's public key over {MESSAGE.decode()!r}"
    )


@pytest.mark.parametrize("field", ["meter_serial", "reading_timestamp", "meter_signature"])
def test_text_fields_over_128_characters_are_refused(config, field: str) -> None:
    message = refused(body(**{field: "1" * 129}), config, InvalidFormat, field)
    assert message == f"{field} is longer than 128 characters"


def test_a_serial_of_exactly_64_characters_is_parsed_65_is_not(config) -> None:
    assert parse_submission(body(meter_serial="S" * 64)).meter_serial == "S" * 64
    message = refused(body(meter_serial="S" * 65), config, InvalidFormat, "meter_serial")
    assert message == (
        "meter_serial is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
    )


@pytest.mark.parametrize("field", ["meter_serial", "reading_timestamp", "meter_signature"])
@pytest.mark.parametrize("value", ["", "   ", 7, ["M-1"]])
def test_text_fields_must_be_non_empty_strings(config, field: str, value: object) -> None:
    message = refused(body(**{field: value}), config, InvalidFormat, field)
    assert message == f"{field} must be a non-empty string"


@pytest.mark.parametrize(
    "field", ["meter_serial", "kwh_amount", "reading_timestamp", "meter_signature"]
)
def test_missing_fields_are_required(config, field: str) -> None:
    raw = body()
    del raw[field]
    assert refused(raw, config, InvalidFormat, field) == f"{field} is required"


def test_kwh_text_over_40_characters_is_refused_before_parsing(config) -> None:
    long = "0" * 38 + "1.5"  # 41 characters, a valid number
    message = refused(body(kwh_amount=long), config, InvalidFormat, "kwh_amount")
    assert message == f"kwh_amount: {GRAMMAR}: {long[:40]!r}"
    assert parse_amount("0" * 37 + "1.5") == Decimal("1.5")  # 40 is still allowed


@pytest.mark.parametrize("value", ["1000000000000", 10**12])
def test_absurd_amounts_are_out_of_range_before_any_formatting(value: object) -> None:
    with pytest.raises(KwhOutOfRange) as caught:
        parse_amount(value)
    assert caught.value.field == "kwh_amount"
    assert str(caught.value) == f"kwh_amount {value} is out of range"


@pytest.mark.parametrize("value", ["-1000000000000", "-999999999999.999999", "-1"])
def test_negative_amounts_are_out_of_range(value: str) -> None:
    with pytest.raises(KwhOutOfRange) as caught:
        parse_amount(value)
    assert str(caught.value) == f"kwh_amount must be > 0, got {value}"


@pytest.mark.parametrize("value", ["-1e30", "1e30"])
def test_exponents_are_outside_the_grammar(config, value: str) -> None:
    message = refused(body(kwh_amount=value), config, InvalidFormat, "kwh_amount")
    assert message == f"kwh_amount: {GRAMMAR}: {value!r}"


def test_just_below_the_absurd_bound_is_an_amount() -> None:
    assert parse_amount("999999999999.999999") == Decimal("999999999999.999999")


@pytest.mark.parametrize("value", [{"kwh": 1}, ["1.5"], 2.01, True, False, b"1.5"])
def test_kwh_must_be_a_string_or_an_exact_number(config, value: object) -> None:
    message = refused(body(kwh_amount=value), config, InvalidFormat, "kwh_amount")
    assert message == "kwh_amount must be a decimal string or a JSON number"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "abc",
            f"kwh_amount: {GRAMMAR}: 'abc'",
        ),
        (
            "NaN",
            f"kwh_amount: {GRAMMAR}: 'NaN'",
        ),
    ],
)
def test_unparsable_amounts_say_why(config, value: str, message: str) -> None:
    assert refused(body(kwh_amount=value), config, InvalidFormat, "kwh_amount") == message


def test_seven_decimals_are_too_many_and_say_so(config) -> None:
    message = refused(body(kwh_amount="1.0000001"), config, TooManyDecimals, "kwh_amount")
    assert message == "kwh_amount 1.0000001 has more than 6 decimals; amounts are never rounded"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-20T11:55:00", "must be RFC 3339 with an offset, e.g. 2026-11-20T11:55:00Z"),
        ("2026-11-20T11:55:00.0001Z", "has sub-millisecond digits; the signature covers whole ms"),
        ("2026-02-30T11:55:00Z", "is not a valid date-time: day is out of range for month"),
        ("2026-13-01T11:55:00Z", "is not a valid date-time: month must be in 1..12"),
    ],
)
def test_bad_timestamps_say_why(config, text: str, message: str) -> None:
    got = refused(body(reading_timestamp=text), config, InvalidFormat, "reading_timestamp")
    assert got == f"reading_timestamp {message}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T11:55:00.120000000Z", datetime(2026, 11, 20, 11, 55, 0, 120_000, tzinfo=UTC)),
        ("2026-11-20 11:55:00-00:30", datetime(2026, 11, 20, 12, 25, tzinfo=UTC)),
        ("2040-01-01T00:00:00.9+14:00", datetime(2039, 12, 31, 10, 0, 0, 900_000, tzinfo=UTC)),
    ],
)
def test_timestamps_keep_their_instant(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_a_non_object_is_refused_with_a_reason() -> None:
    for raw in (["M-1"], "M-1", None, 7):
        with pytest.raises(InvalidFormat) as caught:
            parse_submission(raw)
        assert str(caught.value) == "a reading is a JSON object"


def test_a_malformed_signature_says_what_is_expected(config) -> None:
    message = refused(body(meter_signature="abc"), config, InvalidFormat, "meter_signature")
    assert message == "meter_signature must be base58 of a 64-byte ed25519 signature"


def test_a_foreign_serial_names_both_meters(config) -> None:
    with pytest.raises(ForeignMeter) as caught:
        check_submission(
            parse_submission(body(meter_serial="M-2")),
            meter_serial="M-1",
            public_key=KEY.pubkey(),
            config=config,
            now=NOW,
        )
    assert str(caught.value) == "this API key belongs to meter 'M-1', not 'M-2'"


def signed(kwh: str, at: datetime) -> dict[str, object]:
    """A body signed by hand: the message is assembled here from integers and text."""
    millis = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    whole, _, fraction = kwh.partition(".")
    text = f"{whole}.{fraction.ljust(6, '0')}"
    message = f"gridtokenx-reading:v1:M-1:{millis}:{text}".encode()
    return body(
        kwh_amount=kwh,
        reading_timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        meter_signature=str(KEY.sign_message(message)),
    )


def test_limit_messages_name_the_field_the_limit_and_the_value(config) -> None:
    at = NOW - timedelta(minutes=5)
    out_of_range = refused(signed("100.000001", at), config, KwhOutOfRange, "kwh_amount")
    assert out_of_range == "kwh_amount must be > 0 and <= 100.0, got 100.000001"
    future = NOW + timedelta(seconds=61)
    message = refused(signed("1", future), config, TimestampInFuture, "reading_timestamp")
    assert message == "reading_timestamp 2026-11-20T12:01:01+00:00 is more than 60 s in the future"
    old = NOW - timedelta(days=7, milliseconds=1)
    message = refused(signed("1", old), config, ReadingTooOld, "reading_timestamp")
    assert message == "reading_timestamp 2026-11-13T11:59:59.999000+00:00 is older than 7 days"


def test_the_archive_horizon_refuses_what_is_before_it_whatever_the_age_limit(config) -> None:
    """core.archive removed the readings before the horizon: their resends are refused."""
    horizon = NOW - timedelta(days=2)  # inside the 7-day age limit, so only the horizon decides
    archived = config.with_archive_horizon(horizon)
    before = horizon - timedelta(milliseconds=1)
    message = refused(signed("1", before), archived, ReadingTooOld, "reading_timestamp")
    assert message == (
        "reading_timestamp 2026-11-18T11:59:59.999000+00:00 is in an archived month (readings "
        "before 2026-11-18T12:00:00+00:00 have been archived and are not accepted again)"
    )
    assert check(signed("1", before), config).kwh_micro == 1_000_000  # no horizon: accepted
    assert check(signed("1", horizon), archived).reading_timestamp == horizon  # at it: kept


def test_review_threshold_is_strictly_above(config) -> None:
    at = NOW - timedelta(minutes=5)
    assert check(signed("50", at), config).status is ReadingStatus.PENDING
    above = check(signed("50.000001", at), config)
    assert above.status is ReadingStatus.REVIEW and above.kwh_micro == 50_000_001
