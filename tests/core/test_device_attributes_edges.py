"""Registry fields at their edges: every limit on both sides, every message and field an
error names, and the exact text `shown` writes. Expected values are written out here."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from core.device_attributes import (
    DeviceAttributes,
    InvalidDevice,
    Technology,
    certificate_blocker,
    device_attributes,
    missing_for_certificates,
    parse_capacity_kw,
    parse_commissioning_date,
    parse_country,
    parse_device_attributes,
    parse_grid_region,
    parse_technology,
    shown,
)

TODAY = date(2026, 12, 2)
PARSERS = [parse_technology, parse_capacity_kw, parse_country, parse_grid_region]


def refused(call, *args, **kwargs) -> InvalidDevice:
    with pytest.raises(InvalidDevice) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n"])
def test_blank_means_not_given(parse, blank) -> None:
    assert parse(blank) is None


def test_blank_dates_and_coordinates_are_not_given() -> None:
    assert parse_commissioning_date("  ", today=TODAY) is None
    assert parse_commissioning_date(None, today=TODAY) is None
    assert parse_device_attributes({"latitude": " ", "longitude": None}) == {
        "latitude": None,
        "longitude": None,
    }


@pytest.mark.parametrize(
    ("given", "text"),
    [("5.5", "5.5"), (" 7 ", "7"), (7, "7"), ("0.001", "0.001"), ("12.500", "12.5"),
     ("10", "10"), ("100.000", "100"), ("1E+2", "100"), ("0.5", "0.5"),
     ("10000000", "10000000"), ("9999999.999", "9999999.999")],
)  # fmt: skip
def test_capacity_keeps_the_written_figure(given: object, text: str) -> None:
    parsed = parse_capacity_kw(given)
    assert parsed == Decimal(text) and str(parsed) == text and shown(parsed) == text


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (5.5, "give an exact decimal (a string or an integer)"),
        (True, "give an exact decimal (a string or an integer)"),
        ("abc", "'abc' is not a decimal number"),
        ("NaN", "must be a finite number"),
        ("-Infinity", "must be a finite number"),
        ("0.0001", "at most 3 decimals"),
        ("0", "rated capacity must be above 0 and at most 10000000 kW"),
        ("-0.001", "rated capacity must be above 0 and at most 10000000 kW"),
        ("10000000.001", "rated capacity must be above 0 and at most 10000000 kW"),
    ],
)
def test_capacity_refusals_say_why(given: object, message: str) -> None:
    error = refused(parse_capacity_kw, given)
    assert (str(error), error.field) == (message, "capacity_kw")


def test_technology_is_trimmed_and_lower_cased_and_the_refusal_lists_all() -> None:
    assert parse_technology("  WIND ") is Technology.WIND
    error = refused(parse_technology, "coal")
    assert str(error) == (
        "technology must be one of solar_pv, wind, hydro, battery, biomass, geothermal, "
        "marine, other"
    )
    assert error.field == "technology"


def test_country_is_trimmed_and_upper_cased_and_the_refusal_names_it() -> None:
    assert parse_country("\tde\n") == "DE"
    error = refused(parse_country, "uk")
    assert str(error) == "'uk' is not an ISO 3166-1 alpha-2 country code (e.g. TH, DE)"
    assert error.field == "country"


def test_grid_region_limits_and_message() -> None:
    assert parse_grid_region(" de-lu ") == "DE-LU"
    assert parse_grid_region("a") == "A"
    assert parse_grid_region("Z" + "_" * 31) == "Z" + "_" * 31  # 32 characters
    error = refused(parse_grid_region, "Z" * 33)
    assert str(error) == (
        "a grid region (bidding zone) is 1-32 of A-Z 0-9 - _ (e.g. TH-PEA, DE-LU, SE3)"
    )
    assert error.field == "grid_region"


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("90", "180"), ("-90", "-180"), ("0.000001", "-0.000001"), ("13.756331", "100.501762")],
)
def test_coordinates_up_to_the_poles_and_the_antimeridian(latitude: str, longitude: str) -> None:
    parsed = parse_device_attributes({"latitude": latitude, "longitude": longitude})
    assert parsed == {"latitude": Decimal(latitude), "longitude": Decimal(longitude)}
    assert str(parsed["latitude"]) == latitude and str(parsed["longitude"]) == longitude


@pytest.mark.parametrize(
    ("latitude", "longitude", "field", "message"),
    [
        ("90.000001", "0", "latitude", "must be between -90 and 90 degrees"),
        ("-90.000001", "0", "latitude", "must be between -90 and 90 degrees"),
        ("91", "0", "latitude", "must be between -90 and 90 degrees"),
        ("0", "180.000001", "longitude", "must be between -180 and 180 degrees"),
        ("0", "-180.000001", "longitude", "must be between -180 and 180 degrees"),
        ("0", "181", "longitude", "must be between -180 and 180 degrees"),
        ("0.0000001", "0", "latitude", "at most 6 decimals"),
        ("0", "0.0000001", "longitude", "at most 6 decimals"),
        ("north", "0", "latitude", "'north' is not a decimal number"),
        ("0", 1.5, "longitude", "give an exact decimal (a string or an integer)"),
        ("NaN", "0", "latitude", "must be a finite number"),
    ],
)
def test_coordinate_refusals_name_the_field(
    latitude: object, longitude: object, field: str, message: str
) -> None:
    error = refused(parse_device_attributes, {"latitude": latitude, "longitude": longitude})
    assert (str(error), error.field) == (message, field)


@pytest.mark.parametrize(
    "values",
    [{"latitude": "1"}, {"longitude": "1"}, {"latitude": "1", "longitude": ""},
     {"latitude": None, "longitude": "1"}],
)  # fmt: skip
def test_latitude_and_longitude_come_together(values: dict[str, object]) -> None:
    error = refused(parse_device_attributes, values)
    assert (str(error), error.field) == ("give latitude and longitude together", "latitude")


def test_every_field_parsed_at_once() -> None:
    given = {
        "technology": " Hydro",
        "capacity_kw": "2500.250",
        "country": "no",
        "grid_region": "no1",
        "latitude": "60.5",
        "longitude": "-5.25",
        "commissioning_date": "1880-01-01",
    }
    assert parse_device_attributes(given) == {
        "technology": Technology.HYDRO,
        "capacity_kw": Decimal("2500.25"),
        "country": "NO",
        "grid_region": "NO1",
        "latitude": Decimal("60.5"),
        "longitude": Decimal("-5.25"),
        "commissioning_date": date(1880, 1, 1),
    }
    assert device_attributes(given) == DeviceAttributes(
        Technology.HYDRO, Decimal("2500.25"), "NO", "NO1", Decimal("60.5"), Decimal("-5.25"),
        date(1880, 1, 1),
    )  # fmt: skip
    assert parse_device_attributes({}) == {}


def test_the_first_unknown_field_in_name_order_is_named() -> None:
    error = refused(parse_device_attributes, {"zeta": 1, "technology": "wind", "alpha": 2})
    assert (str(error), error.field) == ("unknown device field 'alpha'", "alpha")


def test_commissioning_date_bounds_and_messages() -> None:
    assert parse_commissioning_date(" 1880-01-01 ", today=TODAY) == date(1880, 1, 1)
    assert parse_commissioning_date(date(2025, 1, 1), today=TODAY) == date(2025, 1, 1)
    out_of_range = "commissioning_date must be between 1880-01-01 and today"
    for bad in ("1879-12-31", "2026-12-03", date(2026, 12, 3)):
        error = refused(parse_commissioning_date, bad, today=TODAY)
        assert (str(error), error.field) == (out_of_range, "commissioning_date")
    # `today` is the bound when given, even when it is long past.
    error = refused(parse_commissioning_date, "2021-01-01", today=date(2020, 1, 1))
    assert str(error) == out_of_range
    error = refused(parse_commissioning_date, "3 May 2024", today=TODAY)
    assert (str(error), error.field) == (
        "commissioning_date must be a date YYYY-MM-DD",
        "commissioning_date",
    )
    error = refused(parse_commissioning_date, datetime(2024, 3, 1, tzinfo=UTC), today=TODAY)
    assert (str(error), error.field) == (
        "give a date (YYYY-MM-DD), not a time",
        "commissioning_date",
    )


def test_without_today_the_bound_is_the_utc_date() -> None:
    utc_today = datetime.now(UTC).date()
    assert parse_commissioning_date(utc_today - timedelta(days=1)) == utc_today - timedelta(days=1)
    refused(parse_commissioning_date, utc_today + timedelta(days=2))


def test_missing_fields_of_any_object_in_the_required_order() -> None:
    assert missing_for_certificates(SimpleNamespace()) == [
        "technology",
        "capacity_kw",
        "country",
        "grid_region",
        "commissioning_date",
    ]
    some = SimpleNamespace(technology="wind", capacity_kw=None, country="DE", latitude=None)
    assert missing_for_certificates(some) == ["capacity_kw", "grid_region", "commissioning_date"]
    assert certificate_blocker(some) == (
        "cannot issue certificates: missing capacity_kw, grid_region, commissioning_date"
    )
    whole = SimpleNamespace(
        technology="wind", capacity_kw=1, country="DE", grid_region="DE-LU",
        commissioning_date=TODAY,
    )  # fmt: skip
    assert missing_for_certificates(whole) == [] and certificate_blocker(whole) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, None), (Decimal("1E+1"), "10"), (Decimal("1E-7"), "0.0000001"),
     (Decimal("-0.5"), "-0.5"), (date(2024, 3, 1), "2024-03-01"),
     (datetime(2024, 3, 1, 12, 30, tzinfo=UTC), "2024-03-01T12:30:00+00:00"),
     (Technology.SOLAR_PV, "solar_pv"), (7, "7"), ("TH", "TH")],
)  # fmt: skip
def test_shown_is_exact_text(value: object, text: str | None) -> None:
    assert shown(value) == text


@pytest.mark.parametrize("zone", ["Etc/GMT-14", "Etc/GMT+12"])  # UTC+14 and UTC-12
def test_the_bound_is_the_utc_date_in_any_local_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At any instant one of the two zones' local date differs from the UTC date.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        utc_today = datetime.now(UTC).date()
        assert parse_commissioning_date(utc_today) == utc_today
        refused(parse_commissioning_date, utc_today + timedelta(days=1))
    finally:
        monkeypatch.undo()
        time.tzset()
