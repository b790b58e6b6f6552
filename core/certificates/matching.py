"""Hourly matching: how much of a consumption profile retired certificates cover, hour by
hour, counting only certificates produced in the same hour and the same grid region.

The profile is a CSV of `hour_start,wh` (RFC 3339 on the hour, whole Wh). For each
hour: matched = min(consumption, the viewer's retired Wh of that production hour in
that region); the share is matched / consumption. Surplus certificates of one hour
never cover another hour: that is the point of hourly matching. Integers end to
end; shares are exact Decimals rounded to 0.01 %.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.certificates.lifecycle import InvalidCertificateRequest
from core.db.models import Certificate, CertificateBundle, CertificateStatus, User
from core.device_attributes import parse_grid_region
from core.views._sql import is_staff

MAX_HOURS = 8784  # a leap year of hours
PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class HourMatch:
    hour_start: datetime
    consumption_wh: int
    certified_wh: int
    matched_wh: int

    @property
    def share(self) -> Decimal:
        return _percent(self.matched_wh, self.consumption_wh)


@dataclass(frozen=True)
class MatchReport:
    grid_region: str
    hours: list[HourMatch]

    @property
    def consumption_wh(self) -> int:
        return sum(h.consumption_wh for h in self.hours)

    @property
    def matched_wh(self) -> int:
        return sum(h.matched_wh for h in self.hours)

    @property
    def share(self) -> Decimal:
        return _percent(self.matched_wh, self.consumption_wh)


def _percent(part: int, whole: int) -> Decimal:
    if whole == 0:
        return Decimal(0)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(PERCENT, rounding=ROUND_HALF_EVEN)


def _bad(line: int, why: str) -> InvalidCertificateRequest:
    return InvalidCertificateRequest(f"line {line}: {why}", field="csv")


def parse_consumption_csv(text: str) -> dict[datetime, int]:
    """`hour_start,wh` rows (a header line is optional) -> Wh per UTC hour."""
    profile: dict[datetime, int] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if line == 1 and row[0].strip().lower() == "hour_start":
            continue
        if len(row) != 2:
            raise _bad(line, "expected two columns: hour_start,wh")
        text = row[0].strip()
        if text.endswith("z"):  # RFC 3339 allows a lower-case z; fromisoformat reads only Z
            text = text[:-1] + "Z"
        try:
            hour = datetime.fromisoformat(text)
        except ValueError as exc:
            raise _bad(line, f"{row[0]!r} is not an RFC 3339 time") from exc
        if hour.tzinfo is None:
            raise _bad(line, "the time needs an offset (e.g. Z)")
        hour = hour.astimezone(UTC)
        if (hour.minute, hour.second, hour.microsecond) != (0, 0, 0):
            raise _bad(line, "hour_start must be on the hour")
        wh_text = row[1].strip()
        if not wh_text.isdigit():
            raise _bad(line, f"wh must be a whole, non-negative number of Wh, not {wh_text!r}")
        if hour in profile:
            raise _bad(line, f"the hour {hour.isoformat()} appears twice")
        profile[hour] = int(wh_text)
        if len(profile) > MAX_HOURS:
            raise _bad(line, f"at most {MAX_HOURS} hours")
    if not profile:
        raise InvalidCertificateRequest("the CSV has no hours", field="csv")
    return profile


def hourly_match(
    session: Session, viewer: User, profile: dict[datetime, int], grid_region: str
) -> MatchReport:
    """Match the profile against the viewer's retired certificates (staff: everyone's)."""
    region = parse_grid_region(grid_region)
    if region is None:
        raise InvalidCertificateRequest("a grid region is required", field="grid_region")
    statement = (
        select(CertificateBundle.hour_start, func.sum(Certificate.wh))
        .join(CertificateBundle, CertificateBundle.id == Certificate.bundle_id)
        .where(
            Certificate.status == CertificateStatus.RETIRED.value,
            CertificateBundle.grid_region == region,
            CertificateBundle.hour_start >= min(profile),
            CertificateBundle.hour_start <= max(profile),
        )
        .group_by(CertificateBundle.hour_start)
    )
    if not is_staff(viewer):
        statement = statement.where(Certificate.holder_id == viewer.id)
    certified = {hour: int(wh) for hour, wh in session.execute(statement)}
    hours = [
        HourMatch(hour, wh, certified.get(hour, 0), min(wh, certified.get(hour, 0)))
        for hour, wh in sorted(profile.items())
    ]
    return MatchReport(region, hours)
