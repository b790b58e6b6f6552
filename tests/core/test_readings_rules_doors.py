"""check_submission for another door's field names and for telemetry samples.

Every refusal must name the field as the sending door wrote it (GridTokenX
bodies say `meterId`, not `meter_serial`), and a telemetry sample passes with a
signed net that may be negative. Signatures are made by a raw Keypair over
bytes given here, never by reading_message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from solders.keypair import Keypair

from core.config import TokenizationConfig
from core.db.models import ReadingStatus
from core.readings import (
    ForeignMeter,
    InvalidSignature,
    KwhOutOfRange,
    ReadingRejected,
    ReadingTooOld,
    TimestampInFuture,
)
from core.readings.plausibility import Hold
from core.readings.rules import FieldNames, SampleFields, Submission, check_submission

KEY = Keypair.from_seed(b"\x09" * 32)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(minutes=5)
DOOR = FieldNames(serial="meterId", amount="energy", timestamp="ts", signature="sig")
SIGNED = b"door-canonical:\x00M-1:42"  # another door's bytes, not ours
SAMPLE = SampleFields(generated_micro=1_000_000, consumed_micro=3_500_000, counter=7)


def config(**changes: object) -> TokenizationConfig:
    base = {"max_reading_kwh": "100", "review_threshold_kwh": "50"}
    return TokenizationConfig.model_validate(
        {**TokenizationConfig().model_dump(), **base, **changes}
    )


def submission(kwh: str = "1.5", at: datetime = AT, **over: object) -> Submission:
    values: dict[str, object] = {
        "meter_serial": "M-1",
        "kwh": Decimal(kwh),
        "reading_timestamp": at,
        "signature": KEY.sign_message(SIGNED),
        "signed_messages": (SIGNED,),
        "fields": DOOR,
    }
    return Submission(**{**values, **over})


def check(sub: Submission, serial: str = "M-1"):
    return check_submission(
        sub, meter_serial=serial, public_key=KEY.pubkey(), config=config(), now=NOW
    )


def refused(sub: Submission, error: type[ReadingRejected], field: str, serial: str = "M-1"):
    with pytest.raises(error) as caught:
        check(sub, serial)
    assert caught.type is error and caught.value.field == field
    assert str(caught.value).startswith(field) or field == "meterId", str(caught.value)
    return str(caught.value)


def test_every_refusal_names_the_doors_own_field() -> None:
    message = refused(submission(), ForeignMeter, "meterId", serial="M-2")
    assert message == "this API key belongs to meter 'M-2', not 'M-1'"
    other = Keypair.from_seed(b"\x0a" * 32).sign_message(SIGNED)
    refused(submission(signature=other), InvalidSignature, "sig")
    message = refused(submission("100.000001"), KwhOutOfRange, "energy")
    assert message == "energy must be > 0 and <= 100, got 100.000001"
    refused(submission("0"), KwhOutOfRange, "energy")
    message = refused(submission(at=NOW + timedelta(seconds=61)), TimestampInFuture, "ts")
    assert message == "ts 2026-11-20T12:01:01+00:00 is more than 60 s in the future"
    old = NOW - timedelta(days=7, milliseconds=1)
    message = refused(submission(at=old), ReadingTooOld, "ts")
    assert message == "ts 2026-11-13T11:59:59.999000+00:00 is older than 7 days"
    horizon = NOW - timedelta(days=1)  # core.archive moved the readings before it out
    with pytest.raises(ReadingTooOld) as caught:
        check_submission(
            submission(at=horizon - timedelta(seconds=1)),
            meter_serial="M-1",
            public_key=KEY.pubkey(),
            config=config().with_archive_horizon(horizon),
            now=NOW,
        )
    assert caught.value.field == "ts" and str(caught.value).startswith("ts 2026-11-19T11:59:59")


def test_a_refused_signature_over_bytes_that_are_not_utf8_is_still_a_refusal() -> None:
    other = Keypair.from_seed(b"\x0a" * 32).sign_message(SIGNED)
    message = refused(submission(signature=other), InvalidSignature, "sig")
    assert message.endswith("over 'door-canonical:\\x00M-1:42'")
    bad = b"\xff\xfebinary"
    message = refused(submission(signature=other, signed_messages=(bad,)), InvalidSignature, "sig")
    assert message.endswith("over '\ufffd\ufffdbinary'"), message


def test_a_sample_passes_with_a_negative_net_and_keeps_every_field() -> None:
    checked = check(submission("-2.5", sample=SAMPLE))
    assert checked.kwh == Decimal("-2.5")
    assert checked.kwh_micro == -2_500_000
    assert checked.reading_timestamp == AT
    assert checked.signature == str(KEY.sign_message(SIGNED))
    assert checked.status is ReadingStatus.PENDING
    assert checked.sample is SAMPLE
    assert checked.hold is None


def test_a_sample_above_the_review_threshold_is_not_held() -> None:
    checked = check(submission("75", sample=SAMPLE))
    assert (checked.status, checked.hold, checked.kwh_micro) == (
        ReadingStatus.PENDING,
        None,
        75_000_000,
    )


def test_a_samples_bound_is_the_maximum_either_way_inclusive() -> None:
    assert check(submission("100", sample=SAMPLE)).kwh_micro == 100_000_000
    assert check(submission("-100", sample=SAMPLE)).kwh_micro == -100_000_000
    for kwh in ("100.000001", "-100.000001"):
        message = refused(submission(kwh, sample=SAMPLE), KwhOutOfRange, "energy")
        assert message == f"energy must be within ±100, got {kwh}"


def test_a_reading_above_the_review_threshold_carries_its_hold() -> None:
    checked = check(submission("50.000001"))
    assert checked.status is ReadingStatus.REVIEW
    assert isinstance(checked.hold, Hold) and checked.hold.reason
    assert checked.sample is None and checked.kwh_micro == 50_000_001
