"""A meter as a certificate registry knows it: technology, rated capacity, country,
grid region, location and commissioning date.

Parsing lives here so the API, the dashboard and the registration use case apply
the same rules; `missing_for_certificates` says why a meter cannot issue
certificates yet (an existing meter starts with none of these set).

Why these limits: capacity is kept to the watt (3 decimals of kW) and below
10 GW (larger than any single generating unit); coordinates to 6 decimals
(about 0.1 m); the grid region is a bidding zone's short code ("TH-PEA",
"DE-LU", "SE3"), upper-cased, so one zone is never spelt two ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from core.country_codes import ISO_3166_ALPHA_2
from core.errors import DomainError

MAX_CAPACITY_KW = Decimal("10000000")
CAPACITY_DECIMALS = 3
COORDINATE_DECIMALS = 6
GRID_REGION_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
EARLIEST_COMMISSIONING = date(1880, 1, 1)


class Technology(StrEnum):
    SOLAR_PV = "solar_pv"
    WIND = "wind"
    HYDRO = "hydro"
    BATTERY = "battery"
    BIOMASS = "biomass"
    GEOTHERMAL = "geothermal"
    MARINE = "marine"
    OTHER = "other"


class InvalidDevice(DomainError):
    code = "invalid_format"


@dataclass(frozen=True)
class DeviceAttributes:
    """Every field optional: a meter may be registered before it is fully described."""

    technology: Technology | None = None
    capacity_kw: Decimal | None = None
    country: str | None = None
    grid_region: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    commissioning_date: date | None = None


FIELD_NAMES = tuple(f.name for f in fields(DeviceAttributes))
# Location is optional for a certificate (EnergyTag asks for country and zone).
REQUIRED_FOR_CERTIFICATES = (
    "technology",
    "capacity_kw",
    "country",
    "grid_region",
    "commissioning_date",
)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, float | bool):
        raise InvalidDevice("give an exact decimal (a string or an integer)", field=field)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidDevice(f"{value!r} is not a decimal number", field=field) from exc
    if not number.is_finite():
        raise InvalidDevice("must be a finite number", field=field)
    return number


def _places(number: Decimal, most: int, field: str) -> Decimal:
    normal = number.normalize()
    exponent = normal.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked by _decimal
    if exponent < -most:
        raise InvalidDevice(f"at most {most} decimals", field=field)
    return normal if exponent < 0 else normal.quantize(Decimal(1))


def parse_technology(value: Any) -> Technology | None:
    if _blank(value):
        return None
    try:
        return Technology(str(value).strip().lower())
    except ValueError as exc:
        allowed = ", ".join(t.value for t in Technology)
        raise InvalidDevice(f"technology must be one of {allowed}", field="technology") from exc


def parse_capacity_kw(value: Any) -> Decimal | None:
    if _blank(value):
        return None
    number = _places(_decimal(value, "capacity_kw"), CAPACITY_DECIMALS, "capacity_kw")
    if not Decimal(0) < number <= MAX_CAPACITY_KW:
        raise InvalidDevice(
            f"rated capacity must be above 0 and at most {MAX_CAPACITY_KW} kW", field="capacity_kw"
        )
    return number


def parse_country(value: Any) -> str | None:
    if _blank(value):
        return None
    code = str(value).strip().upper()
    if code not in ISO_3166_ALPHA_2:
        raise InvalidDevice(
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. TH, DE)", field="country"
        )
    return code


def parse_grid_region(value: Any) -> str | None:
    if _blank(value):
        return None
    code = str(value).strip().upper()
    if not GRID_REGION_PATTERN.fullmatch(code):
        raise InvalidDevice(
            "a grid region (bidding zone) is 1-32 of A-Z 0-9 - _ (e.g. TH-PEA, DE-LU, SE3)",
            field="grid_region",
        )
    return code


def _coordinate(value: Any, field: str, limit: int) -> Decimal | None:
    if _blank(value):
        return None
    number = _places(_decimal(value, field), COORDINATE_DECIMALS, field)
    if not -limit <= number <= limit:
        raise InvalidDevice(f"must be between -{limit} and {limit} degrees", field=field)
    return number


def parse_commissioning_date(value: Any, *, today: date | None = None) -> date | None:
    if _blank(value):
        return None
    if isinstance(value, datetime):
        raise InvalidDevice("give a date (YYYY-MM-DD), not a time", field="commissioning_date")
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError as exc:
            raise InvalidDevice(
                "commissioning_date must be a date YYYY-MM-DD", field="commissioning_date"
            ) from exc
    latest = today or datetime.now(UTC).date()
    if not EARLIEST_COMMISSIONING <= day <= latest:
        raise InvalidDevice(
            f"commissioning_date must be between {EARLIEST_COMMISSIONING} and today",
            field="commissioning_date",
        )
    return day


def parse_device_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """Check the given fields (unknown names refused); blank means "clear it"."""
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise InvalidDevice(f"unknown device field {unknown[0]!r}", field=unknown[0])
    parsers = {
        "technology": parse_technology,
        "capacity_kw": parse_capacity_kw,
        "country": parse_country,
        "grid_region": parse_grid_region,
        "latitude": lambda v: _coordinate(v, "latitude", 90),
        "longitude": lambda v: _coordinate(v, "longitude", 180),
        "commissioning_date": parse_commissioning_date,
    }
    parsed = {name: parsers[name](value) for name, value in values.items()}
    if ("latitude" in parsed) != ("longitude" in parsed) or (
        (parsed.get("latitude") is None) != (parsed.get("longitude") is None)
    ):
        raise InvalidDevice("give latitude and longitude together", field="latitude")
    return parsed


def device_attributes(values: dict[str, Any]) -> DeviceAttributes:
    return DeviceAttributes(**parse_device_attributes(values))


def missing_for_certificates(meter: Any) -> list[str]:
    """The registry fields a meter still lacks before it may issue certificates."""
    return [name for name in REQUIRED_FOR_CERTIFICATES if getattr(meter, name, None) is None]


def certificate_blocker(meter: Any) -> str | None:
    """ "cannot issue certificates: missing technology, country", or None when complete."""
    missing = missing_for_certificates(meter)
    if not missing:
        return None
    return "cannot issue certificates: missing " + ", ".join(missing)


def shown(value: Any) -> str | None:
    """A field's value as the audit event and the API write it (exact, no float)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
