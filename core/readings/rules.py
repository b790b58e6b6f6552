"""The rules a submitted reading must pass before it is stored. Pure: no database.

Order matters for which code a meter sees: first the shape of each field
(`invalid_format`, `too_many_decimals`), then whose reading it is (`forbidden`),
then the signature (`invalid_signature`), then the limits of the effective
configuration (`kwh_out_of_range`, `timestamp_in_future`, `reading_too_old`), then
whether it waits in review (core.readings.plausibility).
Duplicates need the database and are judged in core.readings.store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from core.config import TokenizationConfig
from core.db.models import ReadingStatus
from core.meters import SERIAL_PATTERN
from core.readings.errors import (
    ForeignMeter,
    InvalidFormat,
    InvalidSignature,
    KwhOutOfRange,
    ReadingTooOld,
    TimestampInFuture,
    TooManyDecimals,
)
from core.readings.plausibility import Hold, standing_hold
from core.signatures import parse_signature, reading_message
from core.text import text_problem
from core.units import InvalidAmount, NegativeAmount, kwh_to_micro, parse_kwh
from core.units import TooManyDecimals as UnitsTooManyDecimals

# RFC 3339 date-time; the offset is mandatory (a bare local time is ambiguous).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.(?P<fraction>\d{1,9}))?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_MAX_TEXT = 128  # no field of a reading is longer; longer input is not worth parsing
# Above any configurable maximum (100,000 kWh): refused before formatting the message.
_ABSURD_KWH = Decimal(10) ** 12


@dataclass(frozen=True, slots=True)
class FieldNames:
    """Where a door's body carries each part of a reading, for errors that name the field."""

    serial: str = "meter_serial"
    amount: str = "kwh_amount"
    timestamp: str = "reading_timestamp"
    signature: str = "meter_signature"


OUR_FIELDS = FieldNames()


@dataclass(frozen=True, slots=True)
class SampleFields:
    """What a telemetry sample carries besides its signed net kWh (micro-kWh, exact).

    A sample is not a mintable amount: it settles into its meter's interval
    (core.settlement), whose net surplus is.
    """

    generated_micro: int | None = None
    consumed_micro: int | None = None
    import_micro: int | None = None  # OBIS 1.1.1.8.0.255 as reported (Wh × 1000)
    export_micro: int | None = None  # OBIS 1.1.2.8.0.255
    registers: dict[str, str] | None = None  # every other register, as written
    counter: int | None = None  # an encrypted frame's invocation counter


@dataclass(frozen=True, slots=True)
class Submission:
    """A reading whose fields are well-formed; nothing about it is trusted yet."""

    meter_serial: str
    kwh: Decimal
    reading_timestamp: datetime
    signature: Signature
    # The messages the signature may cover, any one verifying it (another door's
    # canonical forms, core.readings.gridtokenx); None: ours, CONTRACT "Meter signature".
    signed_messages: Sequence[bytes] | None = None
    fields: FieldNames = OUR_FIELDS
    # Set for telemetry: a signed net that may be negative, settled by interval.
    sample: SampleFields | None = None


@dataclass(frozen=True, slots=True)
class CheckedReading:
    """A reading that passed every rule but the duplicate check."""

    kwh: Decimal
    kwh_micro: int
    reading_timestamp: datetime
    signature: str
    status: ReadingStatus
    # Why it waits in review (status review); the store may add an energy hold.
    hold: Hold | None = None
    sample: SampleFields | None = None


def parse_submission(raw: Any) -> Submission:
    """The fields of one reading, or the first format error (naming its field)."""
    if not isinstance(raw, Mapping):
        raise InvalidFormat("a reading is a JSON object")
    serial = _text(raw, "meter_serial")
    if not SERIAL_PATTERN.fullmatch(serial):
        raise InvalidFormat(
            "meter_serial is 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)",
            field="meter_serial",
        )
    kwh = parse_amount(raw.get("kwh_amount"))
    timestamp = parse_timestamp(_text(raw, "reading_timestamp"))
    signature_text = _text(raw, "meter_signature")
    signature = parse_signature(signature_text)
    if signature is None:
        raise InvalidFormat(
            "meter_signature must be base58 of a 64-byte ed25519 signature",
            field="meter_signature",
        )
    return Submission(serial, kwh, timestamp, signature)


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if value is None:
        raise InvalidFormat(f"{field} is required", field=field)
    if not isinstance(value, str) or not value.strip():
        raise InvalidFormat(f"{field} must be a non-empty string", field=field)
    problem = text_problem(value, max_length=_MAX_TEXT)
    if problem:
        raise InvalidFormat(f"{field} {problem}", field=field)
    return value.strip()


def parse_amount(value: Any) -> Decimal:
    """kWh from a JSON string or an exactly parsed JSON number; never through float.

    Both follow one grammar, `[0-9]+(.[0-9]{1,6})?` in ASCII (core.units), so "1e2",
    "٥", " 2 " or "1.0000000" are refused rather than read as some number.
    """
    if value is None:
        raise InvalidFormat("kwh_amount is required", field="kwh_amount")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidFormat(
            "kwh_amount must be a decimal string or a JSON number", field="kwh_amount"
        )
    try:
        kwh = parse_kwh(value)
    except UnitsTooManyDecimals as exc:
        raise TooManyDecimals(
            f"kwh_amount {value} has more than 6 decimals; amounts are never rounded"
        ) from exc
    except NegativeAmount as exc:
        raise KwhOutOfRange(f"kwh_amount must be > 0, got {value}") from exc
    except InvalidAmount as exc:
        raise InvalidFormat(f"kwh_amount: {exc}", field="kwh_amount") from exc
    if abs(kwh) >= _ABSURD_KWH:
        raise KwhOutOfRange(f"kwh_amount {value} is out of range")
    return kwh


def parse_timestamp(text: str, field: str = "reading_timestamp") -> datetime:
    """An aware datetime from RFC 3339 with an offset, at whole-millisecond precision."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise InvalidFormat(
            f"{field} must be RFC 3339 with an offset, e.g. 2026-11-20T11:55:00Z", field=field
        )
    fraction = match.group("fraction") or ""
    if fraction[3:].strip("0"):
        # The signed message carries whole milliseconds; finer digits would go unsigned.
        raise InvalidFormat(
            f"{field} has sub-millisecond digits; the signature covers whole ms", field=field
        )
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise InvalidFormat(f"{field} is not a valid date-time: {exc}", field=field) from exc


def check_submission(
    submission: Submission,
    *,
    meter_serial: str,
    public_key: Pubkey,
    config: TokenizationConfig,
    now: datetime,
) -> CheckedReading:
    """Apply ownership, signature and the configured limits to a well-formed reading."""
    fields = submission.fields
    if submission.meter_serial != meter_serial:
        raise ForeignMeter(
            f"this API key belongs to meter {meter_serial!r}, not {submission.meter_serial!r}",
            field=fields.serial,
        )
    messages = submission.signed_messages or (
        reading_message(meter_serial, submission.reading_timestamp, submission.kwh),
    )
    if not any(submission.signature.verify(public_key, message) for message in messages):
        raise InvalidSignature(
            f"{submission.fields.signature} does not verify against this meter's public key over "
            f"{messages[0].decode(errors='replace')!r}",
            field=submission.fields.signature,
        )
    kwh = submission.kwh
    if submission.sample is not None:
        # Net energy may be negative (the household consumed more), never a refusal;
        # the bound only stops absurd values.
        if abs(kwh) > config.max_reading_kwh:
            raise KwhOutOfRange(
                f"{fields.amount} must be within ±{config.max_reading_kwh}, got {kwh}",
                field=fields.amount,
            )
    elif not 0 < kwh <= config.max_reading_kwh:
        raise KwhOutOfRange(
            f"{fields.amount} must be > 0 and <= {config.max_reading_kwh}, got {kwh}",
            field=fields.amount,
        )
    timestamp = submission.reading_timestamp
    if timestamp > now + timedelta(seconds=config.max_clock_skew_secs):
        raise TimestampInFuture(
            f"{fields.timestamp} {timestamp.isoformat()} is more than "
            f"{config.max_clock_skew_secs} s in the future",
            field=fields.timestamp,
        )
    if timestamp < now - timedelta(days=config.reading_max_age_days):
        raise ReadingTooOld(
            f"{fields.timestamp} {timestamp.isoformat()} is older than "
            f"{config.reading_max_age_days} days",
            field=fields.timestamp,
        )
    if config.archived_before is not None and timestamp < config.archived_before:
        # Its month's readings left the database (core.archive): a resend of one of
        # them would no longer meet its stored twin, so it would mint again.
        raise ReadingTooOld(
            f"{fields.timestamp} {timestamp.isoformat()} is in an archived month (readings "
            f"before {config.archived_before.isoformat()} have been archived and are not "
            "accepted again)",
            field=fields.timestamp,
        )
    if submission.sample is not None:
        # Held or not is judged on the interval's amount (core.settlement), not the sample.
        return CheckedReading(
            kwh=kwh,
            kwh_micro=kwh_to_micro(kwh),
            reading_timestamp=timestamp,
            signature=str(submission.signature),
            status=ReadingStatus.PENDING,
            sample=submission.sample,
        )
    hold = standing_hold(kwh, timestamp, config=config, now=now)
    return CheckedReading(
        kwh=kwh,
        kwh_micro=kwh_to_micro(kwh),
        reading_timestamp=timestamp,
        signature=str(submission.signature),
        status=ReadingStatus.REVIEW if hold else ReadingStatus.PENDING,
        hold=hold,
    )
