"""The pure rules of a reading: field formats, signature, limits (no database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

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
from core.readings.rules import check_submission, parse_submission, parse_timestamp
from core.signatures import reading_message, unix_ms, verify_reading_signature
from tests.factories import NOW, keypair_for, signed_reading

KEY = keypair_for("meter:M-1")


@pytest.fixture
def config(make_settings: Callable[..., Settings]) -> TokenizationConfig:
    return make_settings(TOKENIZATION_REVIEW_THRESHOLD_KWH="50").tokenization


def check(body: dict, config: TokenizationConfig, serial: str = "M-1"):
    return check_submission(
        parse_submission(body), meter_serial=serial, public_key=KEY.pubkey(), config=config, now=NOW
    )


def test_the_canonical_message() -> None:
    at = datetime(2026, 11, 20, 11, 55, 0, 123000, tzinfo=UTC)
    assert unix_ms(at) == 1_795_175_700_123
    message = reading_message("M-1", at, Decimal("3.4125"))
    assert message == f"gridtokenx-reading:v1:M-1:{unix_ms(at)}:3.412500".encode()


def test_unix_ms_is_exact_for_any_instant() -> None:
    assert unix_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert unix_ms(at) == int(at.timestamp()) * 1000 + 678


def test_a_signed_reading_passes(config: TokenizationConfig) -> None:
    checked = check(signed_reading(KEY, "M-1", kwh="3.4125"), config)
    assert (checked.kwh, checked.kwh_micro, checked.status) == (
        Decimal("3.4125"),
        3_412_500,
        ReadingStatus.PENDING,
    )


def test_above_the_review_threshold_waits_for_review(config: TokenizationConfig) -> None:
    assert check(signed_reading(KEY, "M-1", kwh="50.000001"), config).status == "review"
    assert check(signed_reading(KEY, "M-1", kwh="50"), config).status == "pending"


@pytest.mark.parametrize("text", ["2.01", "0.29", "99.999999", "0.000001"])
def test_json_numbers_and_strings_are_the_same_exact_amount(
    config: TokenizationConfig, text: str
) -> None:
    as_string = json.loads(json.dumps(signed_reading(KEY, "M-1", kwh=text)))
    as_number = json.loads(
        json.dumps(signed_reading(KEY, "M-1", kwh=text)).replace(f'"{text}"', text),
        parse_float=Decimal,
    )
    assert isinstance(as_number["kwh_amount"], Decimal)
    micro = int(Decimal(text) * 1_000_000)
    assert check(as_string, config).kwh_micro == check(as_number, config).kwh_micro == micro


@pytest.mark.parametrize(
    ("override", "error", "field"),
    [
        ({"kwh_amount": "1.0000001"}, TooManyDecimals, "kwh_amount"),
        ({"kwh_amount": Decimal("2.0100001")}, TooManyDecimals, "kwh_amount"),
        ({"kwh_amount": 2.01}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": True}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": "abc"}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": "NaN"}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": None}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": "1e30"}, InvalidFormat, "kwh_amount"),
        ({"kwh_amount": "\ufeff1"}, InvalidFormat, "kwh_amount"),
        ({"meter_serial": "M-1\x00"}, InvalidFormat, "meter_serial"),
        ({"meter_serial": "\ud800"}, InvalidFormat, "meter_serial"),
        ({"meter_signature": "\ud800" * 3}, InvalidFormat, "meter_signature"),
        ({"reading_timestamp": "2026-11-20T11:55:00"}, InvalidFormat, "reading_timestamp"),
        ({"reading_timestamp": "2026-11-20"}, InvalidFormat, "reading_timestamp"),
        ({"reading_timestamp": "20261120T115500Z"}, InvalidFormat, "reading_timestamp"),
        ({"reading_timestamp": "2026-11-20T11:55:00.0001Z"}, InvalidFormat, "reading_timestamp"),
        ({"reading_timestamp": 1_795_175_700_123}, InvalidFormat, "reading_timestamp"),
        ({"meter_signature": "not-base58-0OIl"}, InvalidFormat, "meter_signature"),
        ({"meter_signature": "abc"}, InvalidFormat, "meter_signature"),
        ({"meter_serial": ""}, InvalidFormat, "meter_serial"),
        ({"meter_serial": 7}, InvalidFormat, "meter_serial"),
    ],
)
def test_malformed_fields_are_refused_with_their_field(
    config: TokenizationConfig, override: dict, error: type[ReadingRejected], field: str
) -> None:
    body = {**signed_reading(KEY, "M-1"), **override}
    with pytest.raises(error) as caught:
        check(body, config)
    assert caught.value.field == field


def test_a_reading_must_be_an_object(config: TokenizationConfig) -> None:
    with pytest.raises(InvalidFormat):
        check(["not", "an", "object"], config)  # type: ignore[arg-type]


def test_offsets_are_honoured() -> None:
    at = parse_timestamp("2026-11-20T17:25:00.250+05:30")
    assert at == datetime(2026, 11, 20, 11, 55, 0, 250000, tzinfo=UTC)
    assert parse_timestamp("2026-11-20t11:55:00.250000z") == at


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"kwh_amount": "2.0"}, InvalidSignature),  # signed 1.5, claims 2.0
        ({"reading_timestamp": "2026-11-20T11:55:00.001Z"}, InvalidSignature),
    ],
)
def test_tampered_readings_fail_the_signature(
    config: TokenizationConfig, body: dict, error: type[ReadingRejected]
) -> None:
    signed = signed_reading(KEY, "M-1", kwh="1.5", at=NOW - timedelta(minutes=5))
    with pytest.raises(error):
        check({**signed, **body}, config)


def test_a_signature_from_another_key_is_forged(config: TokenizationConfig) -> None:
    with pytest.raises(InvalidSignature) as caught:
        check(signed_reading(keypair_for("intruder"), "M-1"), config)
    assert caught.value.code == "invalid_signature"


def test_another_meters_serial_is_forbidden(config: TokenizationConfig) -> None:
    with pytest.raises(ForeignMeter) as caught:
        check(signed_reading(KEY, "M-2"), config)
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize("kwh", ["0", "-1", "100.000001"])
def test_kwh_out_of_range(config: TokenizationConfig, kwh: str) -> None:
    with pytest.raises(KwhOutOfRange):
        check(signed_reading(KEY, "M-1", kwh=kwh), config)


def test_the_maximum_itself_is_allowed(config: TokenizationConfig) -> None:
    assert check(signed_reading(KEY, "M-1", kwh="100"), config).kwh == 100


def test_time_limits_follow_the_reading_timestamp(config: TokenizationConfig) -> None:
    skew, age = timedelta(seconds=60), timedelta(days=7)
    assert check(signed_reading(KEY, "M-1", at=NOW + skew), config)
    assert check(signed_reading(KEY, "M-1", at=NOW - age), config)
    with pytest.raises(TimestampInFuture):
        check(signed_reading(KEY, "M-1", at=NOW + skew + timedelta(milliseconds=1)), config)
    with pytest.raises(ReadingTooOld):
        check(signed_reading(KEY, "M-1", at=NOW - age - timedelta(milliseconds=1)), config)


def test_verify_reading_signature_tolerates_garbage() -> None:
    message = reading_message("M-1", NOW, Decimal(1))
    good = str(KEY.sign_message(message))
    assert verify_reading_signature(str(KEY.pubkey()), good, message)
    assert not verify_reading_signature("garbage", good, message)
    assert not verify_reading_signature(str(KEY.pubkey()), "garbage", message)
