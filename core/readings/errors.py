"""Why a reading is refused: one class per CONTRACT rejection code.

No HTTP here: api/errors.py maps each `code` to a status. `details` carries the
extra fields a code promises (duplicate_reading names the reading it collides with).
"""

from __future__ import annotations

from typing import Any

from core.errors import DomainError


class ReadingRejected(DomainError):
    """Base of every refusal of a submitted reading."""

    code = "invalid_format"

    @property
    def details(self) -> dict[str, Any]:
        return {}


class InvalidFormat(ReadingRejected):
    code = "invalid_format"


class TooManyDecimals(ReadingRejected):
    code = "too_many_decimals"
    field = "kwh_amount"


class KwhOutOfRange(ReadingRejected):
    code = "kwh_out_of_range"
    field = "kwh_amount"


class TimestampInFuture(ReadingRejected):
    code = "timestamp_in_future"
    field = "reading_timestamp"


class ReadingTooOld(ReadingRejected):
    code = "reading_too_old"
    field = "reading_timestamp"


class InvalidSignature(ReadingRejected):
    code = "invalid_signature"
    field = "meter_signature"


class UnknownMeter(ReadingRejected):
    code = "unknown_meter"
    field = "meter_serial"


class ForeignMeter(ReadingRejected):
    """The key belongs to another meter than the serial in the reading."""

    code = "forbidden"
    field = "meter_serial"


class MeterSuspended(ReadingRejected):
    code = "meter_suspended"


class PayloadTooLarge(ReadingRejected):
    code = "payload_too_large"


class DuplicateReading(ReadingRejected):
    code = "duplicate_reading"
    field = "reading_timestamp"

    def __init__(self, message: str, existing_reading_id: int) -> None:
        super().__init__(message)
        self.existing_reading_id = existing_reading_id

    @property
    def details(self) -> dict[str, Any]:
        return {"existing_reading_id": self.existing_reading_id}


class ReplayedCounter(ReadingRejected):
    """An encrypted frame whose invocation counter is not above the meter's last."""

    code = "replayed_counter"
    field = "payload.enc.counter"
